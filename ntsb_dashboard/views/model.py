"""Model: the champion's model card, its metrics against the baselines, the calibration
(reliability) plot and feature importance, from the MLflow registry."""

import altair as alt
import pandas as pd
import streamlit as st

from ntsb_dashboard import data, ui

store, version = ui.start("Severity model")
ui.remember_query({}, version)
info = data.model_info(version.model_version)
if "error" in info:
    st.info(f"No champion model to show: {info['error'].splitlines()[0][:300]}. "
            "`ntsb build` trains one; docs/ml.md says when a version is promoted.")
    st.stop()
a, b, c, d = st.columns(4)
a.metric("Model", info["name"])
b.metric("Champion version", info["version"])
c.metric("Family", info["champion_family"])
d.metric("Checks", "passed" if str(info.get("checks", "")).lower() in ("passed", "true") else str(info.get("checks")))
st.caption(f"Trained on data version {info.get('data_version')}; split {info['split']}.")

st.subheader("Metrics against the baselines")
rows = []
for family, by_split in (info.get("candidates") or {}).items():
    for split, heads in (by_split or {}).items():
        for head, metrics in (heads or {}).items():
            for metric, value in (metrics or {}).items():
                if isinstance(value, (int, float)):
                    rows.append({"family": family, "split": split, "head": head, "metric": metric, "value": value})
metrics = pd.DataFrame(rows)
if metrics.empty:
    st.json(info.get("metrics"))
else:
    wide = metrics.pivot_table(index=["head", "split", "metric"], columns="family", values="value").reset_index()
    st.dataframe(wide, hide_index=True)
    ui.downloads(wide, "model-metrics", version)

left, right = st.columns(2)
left.subheader("Calibration")
left.image(info["plots"]["reliability.png"], caption="Reliability on the test years: predicted against observed "
                                                     "fatal rate.")
right.subheader("Feature importance")
imp = info.get("importance")
if imp is not None and not imp.empty:
    value = next(c for c in imp.columns if c != "feature" and pd.api.types.is_numeric_dtype(imp[c]))
    right.altair_chart(alt.Chart(imp.nlargest(15, value)).mark_bar().encode(
        x=alt.X(f"{value}:Q"), y=alt.Y("feature:N", sort="-x", title=None)).properties(height=380), width="stretch")
right.image(info["plots"]["shap_summary.png"], caption="SHAP summary (test years).")
if imp is not None:
    ui.downloads(imp, "feature-importance", version)

st.subheader("Model card")
with st.container(border=True):
    st.markdown(info["card"])
