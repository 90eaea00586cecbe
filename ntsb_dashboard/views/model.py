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
    st.info(
        f"No champion model to show: {info['error'].splitlines()[0][:300]}. "
        "`ntsb build` trains one; docs/ml.md says when a version is promoted."
    )
    st.stop()
a, b, c, d = st.columns(4)
a.metric("Model", info["name"])
b.metric("Champion version", info["version"])
c.metric("Family", info["champion_family"])
d.metric("Checks", "passed" if str(info.get("checks", "")).lower() in ("passed", "true") else str(info.get("checks")))
st.caption(f"Trained on data version {info.get('data_version')}; split {info['split']}.")

st.subheader("Metrics against the baselines")
SCORES = ("roc_auc", "pr_auc", "macro_f1", "accuracy", "ece", "events")


def table(metrics: dict | None) -> pd.DataFrame:
    """One row per head and family (the candidates and the majority baseline)."""
    rows = [
        {"head": head, "family": family, **{k: m.get(k) for k in SCORES}}
        for head, families in (metrics or {}).items()
        for family, m in families.items()
    ]
    return pd.DataFrame(rows)


test = table(info.get("metrics"))
st.caption(
    f"Test years {info['split'].get('test')}; the champion family is **{info['champion_family']}**, chosen on "
    f"the validation years {info['split'].get('valid')}; `majority` always predicts the commonest class."
)
if test.empty:
    st.json(info.get("metrics"))
else:
    st.dataframe(
        test.style.apply(
            lambda r: ["font-weight: bold" if r.family == info["champion_family"] else "" for _ in r], axis=1
        ),
        hide_index=True,
    )
    ui.downloads(test, "model-test-metrics", version)
valid = table(info.get("valid_metrics"))
if not valid.empty:
    with st.expander("Validation years"):
        ui.table(valid, "model-validation-metrics", version)

left, right = st.columns(2)
left.subheader("Calibration")
left.image(
    info["plots"]["reliability.png"], caption="Reliability on the test years: predicted against observed fatal rate."
)
right.subheader("Feature importance")
imp = info.get("importance")
if imp is not None and not imp.empty:
    value = next(c for c in imp.columns if c != "feature" and pd.api.types.is_numeric_dtype(imp[c]))
    right.altair_chart(
        alt.Chart(imp.nlargest(15, value))
        .mark_bar()
        .encode(x=alt.X(f"{value}:Q"), y=alt.Y("feature:N", sort="-x", title=None))
        .properties(height=380),
        width="stretch",
    )
right.image(info["plots"]["shap_summary.png"], caption="SHAP summary (test years).")
if imp is not None:
    ui.downloads(imp, "feature-importance", version)

st.subheader("Model card")
with st.container(border=True):
    st.markdown(info["card"])
