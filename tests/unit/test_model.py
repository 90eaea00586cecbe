"""The severity model's library: the time-based split, encoding, calibration, metrics,
training with its leakage guard, persistence and explanations."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from ntsb_assets.lib import features
from ntsb_assets.lib import model as M

KINDS = {"pilot_total_hours": "numeric", "phase_of_flight": "category", "is_homebuilt": "flag", "year": "numeric"}


def _frame(n=3000, seed=0):
    """Events whose outcome depends on the phase of flight and the pilot's hours; years
    1990-2019, the later years a little more numerous."""
    rng = np.random.default_rng(seed)
    year = rng.choice(np.arange(1990, 2020), size=n, p=np.linspace(1, 2, 30) / np.linspace(1, 2, 30).sum())
    phase = rng.choice(["TAXI", "CRUISE", "MANEUVERING", "LANDING"], size=n, p=[0.2, 0.3, 0.2, 0.3])
    hours = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(6, 1, n))
    risk = -2.2 + 1.8 * (phase == "MANEUVERING") - 1.5 * (phase == "TAXI") - 0.3 * np.nan_to_num(np.log(hours) - 6)
    fatal = rng.random(n) < 1 / (1 + np.exp(-risk))
    other = rng.choice(["SERS", "MINR", "NONE"], size=n, p=[0.25, 0.25, 0.5])
    return pd.DataFrame(
        {
            "ev_id": [f"E{i:06d}" for i in range(n)],
            "event_date": pd.to_datetime([f"{y}-06-15" for y in year]),
            "pilot_total_hours": hours,
            "phase_of_flight": pd.array(phase, dtype="string"),
            "is_homebuilt": pd.array(rng.random(n) < 0.1, dtype="boolean"),
            "year": year.astype(float),
            "target_fatal": pd.array(fatal, dtype="boolean"),
            "target_severity": pd.array(np.where(fatal, "FATL", other), dtype="string"),
        }
    )


def test_time_split_cuts_whole_years_from_the_data():
    years = pd.Series([2000] * 50 + [2001] * 30 + [2002] * 10 + [2003] * 5 + [2004] * 5)
    split = M.time_split(years, valid_share=0.15, test_share=0.15)
    # from the latest year back: 2004+2003+2002 reach 20% >= 15% -> test; 2001 -> validation
    assert split.test_years == (2002, 2003, 2004) and split.valid_years == (2001,) and split.train_years == (2000,)
    assert split.describe() == {"train": "2000", "valid": "2001", "test": "2002-2004"}
    assert split.label(pd.Series([2000, 2001, 2004])).tolist() == ["train", "valid", "test"]
    with pytest.raises(M.ModelError, match="at least 3 years"):
        M.time_split(pd.Series([2000, 2001]))


def test_encoder_keeps_training_levels_and_maps_rare_or_unseen_to_other():
    df = pd.DataFrame({"c": ["A"] * 6 + ["B"] * 2 + [None], "x": [1.0] * 9, "f": [True] * 9})
    enc = M.Encoder.fit(df, {"c": "category", "x": "numeric", "f": "flag"})
    assert enc.categories["c"] == ["A", M.OTHER]  # B seen twice: below MIN_LEVEL
    assert enc.columns == ["x", "f", "c"] and enc.types == ["q", "q", "c"]
    rows = pd.DataFrame({"c": ["A", "B", "Z", None], "x": ["2", None, 3, "bad"], "f": [True, False, None, True]})
    X = enc.transform(rows)
    want = np.array([[2.0, 1.0, 0.0], [np.nan, 0.0, 1.0], [3.0, np.nan, 1.0], [np.nan, 1.0, np.nan]])
    assert np.array_equal(X, want, equal_nan=True)
    # typed columns as the lake's Parquet gives them (pandas' nullable text, numbers and flags)
    typed = pd.DataFrame(
        {
            "c": pd.array(["A", "B", "Z", None], dtype="string"),
            "x": pd.array([2, None, 3, None], dtype="Int64"),
            "f": pd.array([True, False, None, True], dtype="boolean"),
        }
    )
    assert np.array_equal(enc.transform(typed), want, equal_nan=True)
    assert np.array_equal(enc.transform(typed.astype({"x": "float64"})), want, equal_nan=True)
    # the one-row path (no pandas) encodes the same
    for i, r in enumerate(rows.astype(object).where(rows.notna(), None).to_dict("records")):
        assert np.array_equal(enc.row(r)[0], want[i], equal_nan=True)
    assert [enc.display(X, j, 0) for j in range(3)] == [2.0, 1.0, "A"]
    with pytest.raises(M.ModelError, match="lacks"):
        enc.transform(pd.DataFrame({"c": ["A"]}))
    with pytest.raises(M.ModelError, match="lacks"):
        enc.row({"c": "A"})


def test_ece_and_metrics_against_direct_computation():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p1 = np.array([0.1, 0.15, 0.8, 0.85, 0.35, 0.3, 0.9, 0.2])
    proba = np.column_stack([1 - p1, p1])
    # bins of 0.1: {0.1, 0.15} mean .125 observed 0; {0.2} observed 0; {0.3, 0.35} mean .325
    # observed .5; {0.8, 0.85} mean .825 observed 1; {0.9} observed 1
    want = (2 * 0.125 + 0.2 + 2 * 0.175 + 2 * 0.175 + 0.1) / 8
    assert M.ece(y, proba) == pytest.approx(want)
    pred = (p1 > 0.5).astype(int)
    m = M.evaluate(y, proba, pred, ("NOT_FATAL", "FATAL"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p1))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["recall"] == {"NOT_FATAL": 1.0, "FATAL": 0.75} and m["confusion"] == [[4, 0], [1, 3]]
    # a class absent from the test years: no recall, AUC over the classes present
    y4 = np.array([0, 1, 3, 3])
    p4 = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.2, 0.2, 0.1, 0.5]])
    m4 = M.evaluate(y4, p4, p4.argmax(axis=1), features.SEVERITY_CLASSES)
    assert m4["recall"]["MINR"] is None and m4["roc_auc"] == 1.0


def test_calibrator_fixes_probabilities_pushed_by_class_weights():
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.01, 0.4, 20000)
    y = (rng.random(20000) < p_true).astype(int)
    odds = p_true / (1 - p_true) * 4  # what balanced weights do: odds inflated
    inflated = np.column_stack([1 / (1 + odds), odds / (1 + odds)])
    cal = M.Calibrator.fit(inflated, y, 2)
    assert M.ece(y, inflated) > 0.15 and M.ece(y, cal.apply(inflated)) < 0.02


def test_training_beats_the_baselines_on_a_learnable_signal_and_round_trips(tmp_path):
    df = _frame()
    trained = M.train(df, features=KINDS, params=M.Params(max_rounds=300))
    s = trained.model.split
    assert max(s.train_years) < min(s.valid_years) and max(s.valid_years) < min(s.test_years)
    assert sum(trained.sizes.values()) == len(df)
    fatal = trained.metrics["fatal"]
    assert fatal["majority"]["roc_auc"] == 0.5 and fatal["majority"]["recall"]["FATAL"] == 0.0
    assert fatal["xgboost"]["roc_auc"] > 0.7 and fatal["xgboost"]["ece"] < 0.1
    assert trained.metrics["severity"]["xgboost"]["recall"]["FATL"] > 0.3
    # saved and loaded: the same predictions
    rows = df.head(50)
    before = trained.model.predict(rows)
    again = M.SeverityModel.load(trained.model.save(tmp_path / "m")).predict(rows)
    pd.testing.assert_frame_equal(before, again)
    assert np.allclose(before[["p_fatl", "p_sers", "p_minr", "p_none"]].sum(axis=1), 1)
    # explanations: TreeSHAP adds up to the fatal head's log-odds
    row = rows.iloc[0].to_dict()
    ex = trained.model.explain(row, top=2)
    assert len(ex["contributions"]) == 2 and ex["contributions"][0]["feature"] in KINDS
    X = trained.model.frame(row)
    raw = trained.model.heads["fatal"].raw(X)[0, 1]
    assert trained.model.heads["fatal"].contributions(X)[0].sum() == pytest.approx(np.log(raw / (1 - raw)), abs=1e-4)


def test_the_shap_summary_ranks_the_inputs_by_their_mean_push_and_spreads_crowded_values():
    trained = M.train(_frame(n=1500), features=KINDS, params=M.Params(max_rounds=30))
    pngs = M.plots(trained)
    assert pngs["shap_summary.png"].startswith(b"\x89PNG")
    fig = M.plot_shap(trained, rows=2000)
    ax = fig.axes[0]
    values = trained.model.heads["fatal"].contributions(trained.test[:2000])[:, :-1]
    names = trained.model.encoder.columns
    ranked = [names[j] for j in np.argsort(-np.abs(values).mean(axis=0), kind="stable")]
    assert [t.get_text() for t in ax.get_yticklabels()] == ranked[::-1]  # the largest push at the top
    assert sum(len(c.get_offsets()) for c in ax.collections) == values.size  # each event once per input
    plt.close(fig)
    # equal values side by side, alternating about the line; a lone value on it
    offsets = M._swarm(np.array([1.0] * 5 + [3.0]))
    assert len(set(offsets[:5])) == 5 and np.abs(offsets).max() <= 0.4 and offsets[5] == 0
    assert sorted(np.sign(offsets[1:5])) == [-1, -1, 1, 1]


def test_training_refuses_a_denylisted_column():
    df = _frame(600)
    df["aircraft_damage"] = "SUBS"
    with pytest.raises(features.LeakageError, match="aircraft_damage.*damage"):
        M.train(df, features={**KINDS, "aircraft_damage": "category"})
    # and the model refuses it at prediction time as well
    trained = M.train(df, features=KINDS, params=M.Params(max_rounds=20))
    trained.model.features["inj_tot_f"] = "numeric"
    with pytest.raises(features.LeakageError):
        trained.model.frame(df.assign(inj_tot_f=1.0).head(1))


def test_checks_see_the_registered_inputs_and_thresholds():
    trained = M.train(_frame(), features=KINDS, params=M.Params(max_rounds=100))
    ok = M.evaluate_checks(trained, list(KINDS), auc_margin=-1.0, max_ece=1.0)
    assert {k: v[0] for k, v in ok.items()} == dict.fromkeys(ok, True)
    bad = M.evaluate_checks(trained, [*KINDS, "ev_highest_injury"], auc_margin=1.0, max_ece=0.0)
    assert {k: v[0] for k, v in bad.items()} == dict.fromkeys(bad, False)
    assert "injur" in bad["no_denylisted_feature"][1]["refused"]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_an_unchanged_prediction_keeps_its_row_in_the_warehouse(dialect, tmp_path, request):
    """Batch predictions stored, then predicted again: only the changed event, the new one
    and the gone one are written; the others keep their row and predicted_at. Another
    model version rewrites every row."""
    import time

    from ntsb_assets.lib.predictions import prediction_table, store_predictions
    from ntsb_assets.lib.warehouse import Warehouse

    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if dialect == "duckdb" else request.getfixturevalue("pg_url")
    wh = Warehouse(url)
    df = _frame(800)
    model = M.train(df, features=KINDS, params=M.Params(max_rounds=20)).model
    first = prediction_table(model, "1", df.head(600))
    with wh.session() as s:
        assert store_predictions(s, first) == 600
    time.sleep(1.1)  # the stamp has a resolution of one second
    again = df.iloc[1:601].copy()  # the first event gone, one new
    again.loc[5, "phase_of_flight"] = "TAXI" if again.loc[5, "phase_of_flight"] != "TAXI" else "CRUISE"
    second = prediction_table(model, "1", again)
    changed = {again.loc[5, "ev_id"], again.loc[600, "ev_id"]}
    with wh.session() as s:
        assert store_predictions(s, second) == 2
        out = s.query("SELECT * FROM ml.batch_predictions").to_pandas().set_index("ev_id")
    assert len(out) == 600 and set(out.index) == set(again["ev_id"])
    stamped = out["predicted_at"] == second.column("predicted_at")[0].as_py()
    assert set(out.index[stamped]) == changed
    expected = second.to_pandas().set_index("ev_id").drop(columns="predicted_at")
    pd.testing.assert_frame_equal(out.drop(columns="predicted_at").loc[expected.index], expected, check_dtype=False)
    with wh.session() as s:  # another model version: every row written
        assert store_predictions(s, prediction_table(model, "2", again)) == 600


@pytest.mark.parametrize("family", M.FAMILIES)
def test_every_family_round_trips_and_its_shap_values_add_up_to_the_margin(family, tmp_path):
    df = _frame(1500)
    params = M.Params(max_rounds=60, learning_rates=(0.1,), shapes=((3, 5.0),), forest_trees=20, forest_depths=(6,))
    trained = M.train(df, features=KINDS, params=params)
    assert set(trained.candidates) == set(M.FAMILIES)
    # retrain the family's heads the way train() does, and check them as a model
    years = pd.to_datetime(df["event_date"]).dt.year
    part = trained.model.split.label(years)
    tr, va = df[part == "train"], df[part == "valid"]
    enc = trained.model.encoder
    heads = {}
    for name, (target, classes) in M.HEADS.items():
        heads[name] = M._fit_head(
            family,
            name,
            enc,
            enc.transform(tr),
            M._codes(tr[target], classes),
            enc.transform(va),
            M._codes(va[target], classes),
            params,
            1,
        )
    model = M.SeverityModel(trained.model.features, enc, heads, trained.model.split)
    assert model.family == family
    rows = df.head(40)
    again = M.SeverityModel.load(model.save(tmp_path / family))
    pd.testing.assert_frame_equal(model.predict(rows), again.predict(rows))
    X = model.frame(rows)
    for head in (model.heads["fatal"], again.heads["fatal"]):
        raw = head.raw(X)[:, 1]
        assert np.allclose(head.contributions(X).sum(axis=1), np.log(raw / (1 - raw)), atol=1e-4)
    sev = again.heads["severity"].contributions(X)
    assert sev.shape == (len(X), 4, len(enc.columns) + 1)
    ex = again.explain(rows.iloc[0].to_dict(), top=3)
    assert len(ex["contributions"]) == 3 and np.isclose(sum(ex["probabilities"].values()), 1)


def test_the_champion_family_is_chosen_on_the_validation_years_only():
    def m(auc, ece=0.01):
        return {"roc_auc": auc, "ece": ece}

    valid = {
        h: {"xgboost": m(0.70), "random_forest": m(0.74), "logistic": m(0.72), "majority": m(0.5)} for h in M.HEADS
    }
    sel = M.select(valid, auc_margin=0.05, max_ece=0.05)
    assert sel["family"] == "random_forest" and sel["next"] == "logistic"
    assert sel["margin_over_next"] == pytest.approx(0.02) and sel["passed"]
    # a family that is not calibrated on the validation years cannot win; nor one under the margin
    valid["fatal"]["random_forest"]["ece"] = 0.2
    valid["severity"]["logistic"]["roc_auc"] = 0.52
    sel = M.select(valid, auc_margin=0.05, max_ece=0.05)
    assert sel["family"] == "xgboost" and set(sel["not_passing"]) == {"random_forest", "logistic"}
    assert "ECE" in sel["not_passing"]["random_forest"][0] and "severity ROC-AUC" in sel["not_passing"]["logistic"][0]
    # none passes: the best on validation is still named, and not passed
    sel = M.select(valid, auc_margin=0.5, max_ece=0.05)
    assert not sel["passed"] and sel["family"] == "random_forest"


def test_make_and_model_enter_as_their_training_frequency():
    df = pd.DataFrame({"make": ["CESSNA"] * 7 + ["PIPER"] * 2 + [None], "x": [1.0] * 10})
    enc = M.Encoder.fit(df, {"make": "category", "x": "numeric"})
    assert enc.columns == ["x", "make_frequency", "make"] and enc.feature_of("make_frequency") == "make"
    X = enc.transform(pd.DataFrame({"make": ["CESSNA", "PIPER", "NEVER SEEN", None], "x": [1.0] * 4}))
    assert np.allclose(X[:, 1], [np.log1p(7), np.log1p(2), 0.0, np.nan], equal_nan=True)
    assert np.array_equal(enc.row({"make": "PIPER", "x": 1.0})[0], X[1], equal_nan=True)


def test_what_is_written_as_json_takes_numpy_scalars(tmp_path):
    """`ntsb build` once failed with "Object of type int64 is not JSON serializable": which
    scalar types a computation returns can depend on the data. Everything the model writes
    as JSON (model.json, the registry's metrics.json, the card) is made plain first."""
    import json

    trained = M.train(_frame(n=1500), features=KINDS, params=M.Params(max_rounds=30))
    trained.sizes = {k: np.int64(v) for k, v in trained.sizes.items()}
    fam = trained.model.family
    for h in M.HEADS:
        trained.candidates[fam][h] = {
            k: np.int64(v) if isinstance(v, int) else v for k, v in trained.candidates[fam][h].items()
        }
        trained.model.heads[h].shape = dict(trained.candidates[fam][h])
        trained.model.heads[h].best_iteration = np.int64(trained.model.heads[h].best_iteration)
    trained.selection["numpy_flag"] = np.bool_(True)
    summary = json.loads(json.dumps(M.summary(trained)))
    assert (
        summary["sizes"] == {k: int(v) for k, v in trained.sizes.items()} and summary["selection"]["numpy_flag"] is True
    )
    again = M.SeverityModel.load(trained.model.save(tmp_path / "m"))
    assert again.heads["fatal"].best_iteration == int(trained.model.heads["fatal"].best_iteration)
    assert str(int(trained.sizes["train"])) in M.card(trained, "ntsb_severity", "1", [])  # renders the settings too
