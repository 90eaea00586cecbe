"""The severity model: a time-based split, XGBoost with two heads (fatal or not; highest
injury in four classes), two baselines on the same split, the metrics, calibration and
explanations. Pure Python over a features frame (:mod:`.features`); MLflow lives in
:mod:`.tracking`, Dagster in ``ntsb_assets.ml``. See docs/ml.md.

Decisions, each documented in docs/ml.md:

- The split is by event year: the most recent years holding ``test_share`` of the events are
  the test set, the years before them holding ``valid_share`` the validation set, the rest
  trains. Never at random: that would let a model learn the years it is scored on.
- XGBoost trains with balanced class weights and stops early on the validation loss.
  Weighted training shifts probabilities toward rare classes, so every model's probabilities
  are then recalibrated on the validation years (multinomial logistic regression on the
  log-probabilities: Platt scaling for two classes, "vector scaling" for four).
- The predicted class is the one whose calibrated probability is highest relative to its
  share of the training events (the balanced decision rule class weighting aims at); the
  majority baseline always predicts the majority class.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import features as F

OTHER = "(other)"          # a category level too rare in training, or never seen
MIN_LEVEL = 5              # events a level needs in training to be its own category
HEADS = {
    "fatal": ("target_fatal", ("NOT_FATAL", "FATAL")),
    "severity": ("target_severity", F.SEVERITY_CLASSES),
}


class ModelError(Exception):
    pass


# --------------------------------------------------------------------------- split
@dataclass(frozen=True)
class Split:
    train_years: tuple[int, ...]
    valid_years: tuple[int, ...]
    test_years: tuple[int, ...]

    def label(self, years: pd.Series) -> pd.Series:
        out = pd.Series("train", index=years.index)
        out[years.isin(self.valid_years)] = "valid"
        out[years.isin(self.test_years)] = "test"
        return out

    def describe(self) -> dict[str, str]:
        def span(ys):
            return f"{min(ys)}-{max(ys)}" if len(ys) > 1 else str(ys[0])
        return {"train": span(self.train_years), "valid": span(self.valid_years), "test": span(self.test_years)}


def time_split(years: pd.Series, valid_share: float = 0.15, test_share: float = 0.15) -> Split:
    """Cut years from the data: walking back from the latest year, whole years go to the test
    set until it holds ``test_share`` of the events, then to validation until it holds
    ``valid_share``; every earlier year trains."""
    counts = years.dropna().astype(int).value_counts().sort_index(ascending=False)
    if len(counts) < 3:
        raise ModelError(f"a time-based split needs events in at least 3 years, got {sorted(counts.index)}")
    total, test, valid, acc = counts.sum(), [], [], 0
    for year, n in counts.items():
        if acc < test_share * total:
            test.append(year)
        elif acc < (test_share + valid_share) * total:
            valid.append(year)
        else:
            break
        acc += n
    train = [y for y in counts.index if y not in test and y not in valid]
    if not valid or not train:  # tiny or lopsided data: one year each for test and validation
        test, valid = [counts.index[0]], [counts.index[1]]
        train = list(counts.index[2:])
    return Split(tuple(sorted(train)), tuple(sorted(valid)), tuple(sorted(test)))


# --------------------------------------------------------------------------- encoding
@dataclass
class Encoder:
    """Raw feature values -> the float matrix XGBoost and the logistic baseline read:
    numbers and flags as themselves, categories as the index of their level among the
    training levels (rare or unseen levels -> OTHER, the last); NaN is missing. XGBoost is
    told which columns are categorical (feature type "c")."""
    numeric: list[str]
    categories: dict[str, list[str]]

    @classmethod
    def fit(cls, df: pd.DataFrame, kinds: dict[str, str]) -> Encoder:
        numeric = [c for c, k in kinds.items() if k != "category"]
        cats = {}
        for c, k in kinds.items():
            if k == "category":
                counts = df[c].dropna().astype(str).value_counts()
                cats[c] = sorted(counts[counts >= MIN_LEVEL].index) + [OTHER]
        return cls(numeric, cats)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categories]

    @property
    def types(self) -> list[str]:
        return ["q"] * len(self.numeric) + ["c"] * len(self.categories)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ModelError(f"feature row lacks {missing}")
        out = np.empty((len(df), len(self.columns)))
        for j, c in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(df[c].astype("object"), errors="coerce").astype("float64").to_numpy()
        for j, (c, levels) in enumerate(self.categories.items(), start=len(self.numeric)):
            raw = df[c].astype("string")
            raw = raw.where(raw.isna() | raw.isin(levels), OTHER)
            codes = pd.Categorical(raw.astype("object").where(raw.notna(), None), categories=levels).codes
            out[:, j] = np.where(codes < 0, np.nan, codes)
        return out

    def row(self, values: dict) -> np.ndarray:
        """One feature row (a mapping) as a 1 x features matrix, without pandas: the API's path."""
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise ModelError(f"feature row lacks {missing}")
        if not hasattr(self, "_index"):
            self._index = {c: {v: i for i, v in enumerate(levels)} for c, levels in self.categories.items()}
        out = []
        for c in self.numeric:
            out.append(_number(values[c]))
        for c, index in self._index.items():
            v = values[c]
            out.append(np.nan if _missing(v) else float(index.get(str(v), len(index) - 1)))
        return np.array([out])

    def display(self, X: np.ndarray, j: int, i: int = 0):
        """The raw value behind cell (i, j): a level for categories, a number otherwise."""
        v = X[i, j]
        if np.isnan(v):
            return None
        if j < len(self.numeric):
            return float(v)
        return self.categories[self.columns[j]][int(v)]


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _number(v) -> float:
    if _missing(v):
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


# --------------------------------------------------------------------------- calibration
@dataclass
class Calibrator:
    """Multinomial logistic regression on log-probabilities, fitted on the validation years."""
    coef: list[list[float]]
    intercept: list[float]

    @classmethod
    def fit(cls, proba: np.ndarray, y: np.ndarray, k: int) -> Calibrator:
        from sklearn.linear_model import LogisticRegression
        z = _logits(proba)
        present = np.unique(y)
        if len(present) < 2:  # nothing to learn from: identity
            return cls(np.eye(z.shape[1]).tolist(), [0.0] * z.shape[1])
        lr = LogisticRegression(C=100.0, max_iter=2000).fit(z, y)
        if k == 2:
            coef = np.vstack([np.zeros(z.shape[1]), lr.coef_[0]])
            icpt = np.array([0.0, lr.intercept_[0]])
        else:  # classes absent from validation keep their (shrunk) log-probability
            coef, icpt = np.zeros((k, z.shape[1])), np.full(k, -10.0)
            for row, cls_ in enumerate(lr.classes_):
                coef[cls_], icpt[cls_] = lr.coef_[row], lr.intercept_[row]
        return cls(coef.tolist(), icpt.tolist())

    def apply(self, proba: np.ndarray) -> np.ndarray:
        s = _logits(proba) @ np.asarray(self.coef).T + np.asarray(self.intercept)
        s -= s.max(axis=1, keepdims=True)
        e = np.exp(s)
        return e / e.sum(axis=1, keepdims=True)


def _logits(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-6, 1 - 1e-6)
    if p.shape[1] == 2:
        return np.log(p[:, 1:] / p[:, :1])
    return np.log(p)


# --------------------------------------------------------------------------- metrics
def ece(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: for two classes, of the positive class's probability in
    equal-width bins; for more, the mean over classes of each class's one-vs-rest ECE."""
    def one(hit, p):
        idx = np.minimum((p * bins).astype(int), bins - 1)
        total = 0.0
        for b in range(bins):
            m = idx == b
            if m.any():
                total += m.sum() * abs(hit[m].mean() - p[m].mean())
        return total / len(p)
    if proba.shape[1] == 2:
        return float(one((y == 1).astype(float), proba[:, 1]))
    return float(np.mean([one((y == c).astype(float), proba[:, c]) for c in range(proba.shape[1])]))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows = [(b, int((idx == b).sum()), float(p[idx == b].mean()), float(y[idx == b].mean()))
            for b in range(bins) if (idx == b).any()]
    return pd.DataFrame(rows, columns=["bin", "events", "predicted", "observed"])


def evaluate(y: np.ndarray, proba: np.ndarray, pred: np.ndarray, classes) -> dict:
    """ROC-AUC and PR-AUC (one-vs-rest, macro over the classes present, for more than two),
    macro-F1, per-class recall, accuracy, ECE and the confusion matrix (rows true)."""
    from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score
    k = len(classes)
    out: dict = {"events": int(len(y))}
    if k == 2:
        both = len(np.unique(y)) == 2
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1])) if both else None
        out["pr_auc"] = float(average_precision_score(y, proba[:, 1])) if both else None
    else:
        aucs, aps = [], []
        for c in range(k):
            hit = (y == c).astype(int)
            if 0 < hit.sum() < len(hit):
                aucs.append(roc_auc_score(hit, proba[:, c]))
                aps.append(average_precision_score(hit, proba[:, c]))
        out["roc_auc"] = float(np.mean(aucs)) if aucs else None
        out["pr_auc"] = float(np.mean(aps)) if aps else None
    out["macro_f1"] = float(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0))
    out["accuracy"] = float((y == pred).mean()) if len(y) else None
    out["recall"] = {str(c): (float((pred[y == i] == i).mean()) if (y == i).any() else None)
                     for i, c in enumerate(classes)}
    out["ece"] = ece(y, proba)
    out["confusion"] = confusion_matrix(y, pred, labels=list(range(k))).tolist()
    return out


# --------------------------------------------------------------------------- the heads
@dataclass
class Head:
    """One target: an XGBoost booster, its calibrator and the training class shares."""
    target: str
    classes: tuple[str, ...]
    prior: list[float]
    calibrator: Calibrator
    booster: object = field(repr=False)   # xgboost.Booster
    best_iteration: int = 0
    shape: tuple = ()                     # (max_depth, min_child_weight) chosen on validation

    def raw(self, X: np.ndarray) -> np.ndarray:
        m = self.booster.inplace_predict(X, iteration_range=(0, self.best_iteration + 1))
        return np.column_stack([1 - m, m]) if m.ndim == 1 else m

    def proba(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator.apply(self.raw(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP values in the booster's margin (log-odds for two classes); the last
        column is the bias. For more classes: (rows, classes, features + 1)."""
        import xgboost as xgb
        d = xgb.DMatrix(X, feature_names=self.booster.feature_names, feature_types=self.booster.feature_types,
                        enable_categorical=True)
        return self.booster.predict(d, pred_contribs=True, iteration_range=(0, self.best_iteration + 1))


def decide(proba: np.ndarray, prior) -> np.ndarray:
    return np.argmax(proba / np.asarray(prior), axis=1)


def _codes(y: pd.Series, classes) -> np.ndarray:
    if classes == HEADS["fatal"][1]:
        return y.astype(bool).astype(int).to_numpy()
    index = {c: i for i, c in enumerate(classes)}
    return y.map(index).astype(int).to_numpy()


def _balanced(y: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(y, minlength=k).astype(float)
    w = len(y) / (k * np.maximum(counts, 1))
    return w[y]


@dataclass
class Params:
    """XGBoost settings. The tree shape is searched: each (max_depth, min_child_weight) in
    ``shapes`` trains with early stopping, and the lowest validation loss wins."""
    learning_rate: float = 0.05
    shapes: tuple = ((2, 5.0), (3, 5.0), (5, 2.0))
    subsample: float = 0.85
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_rounds: int = 1500
    early_stopping_rounds: int = 60    # 0: no early stopping, every round kept
    max_cat_to_onehot: int = 8
    seed: int = 7


def _fit_head(name: str, enc: Encoder, Xtr, ytr, Xva, yva, params: Params, threads: int) -> Head:
    import xgboost as xgb
    target, classes = HEADS[name]
    k = len(classes)
    if len(np.unique(ytr)) < 2:
        raise ModelError(f"{target}: the training years hold a single class")
    base = {
        "tree_method": "hist", "eta": params.learning_rate, "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree, "lambda": params.reg_lambda,
        "max_cat_to_onehot": params.max_cat_to_onehot, "seed": params.seed, "nthread": threads,
        **({"objective": "binary:logistic", "eval_metric": "logloss"} if k == 2 else
           {"objective": "multi:softprob", "num_class": k, "eval_metric": "mlogloss"}),
    }
    kw = {"feature_names": enc.columns, "feature_types": enc.types, "enable_categorical": True}
    dtr = xgb.DMatrix(Xtr, label=ytr, weight=_balanced(ytr, k), **kw)
    dva = xgb.DMatrix(Xva, label=yva, weight=_balanced(yva, k), **kw)
    best = None
    for depth, mcw in params.shapes:
        history: dict = {}
        booster = xgb.train({**base, "max_depth": depth, "min_child_weight": mcw}, dtr,
                            num_boost_round=params.max_rounds, evals=[(dva, "valid")], evals_result=history,
                            early_stopping_rounds=params.early_stopping_rounds or None, verbose_eval=False)
        if params.early_stopping_rounds:
            score, last = booster.best_score, booster.best_iteration
        else:   # every round kept
            score, last = next(iter(history["valid"].values()))[-1], booster.num_boosted_rounds() - 1
        if best is None or score < best[0]:
            best = score, booster, int(last), (depth, mcw)
    prior = (np.bincount(ytr, minlength=k) / len(ytr)).tolist()
    head = Head(target, tuple(classes), prior, Calibrator([[1.0]], [0.0]), best[1], best[2], best[3])
    head.calibrator = Calibrator.fit(head.raw(Xva), yva, k)
    return head


# --------------------------------------------------------------------------- baselines
class Logistic:
    """The logistic-regression baseline: median imputation with missing indicators, scaled
    numbers, one-hot categories (the encoder's levels), balanced class weights, calibrated
    on the validation years like the model."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder

    def _design(self, X: np.ndarray):
        """Scaled numbers, missing indicators and one-hot categories, as a sparse matrix."""
        from scipy import sparse
        n, m = X.shape[0], len(self.encoder.numeric)
        num = X[:, :m]
        parts = [sparse.csr_matrix(np.nan_to_num((num - self.center) / self.scale)),
                 sparse.csr_matrix(np.isnan(num).astype(float))]
        for j, levels in enumerate(self.encoder.categories.values(), start=m):
            codes = X[:, j]
            ok = ~np.isnan(codes)
            parts.append(sparse.csr_matrix((np.ones(ok.sum()), (np.flatnonzero(ok), codes[ok].astype(int))),
                                           shape=(n, len(levels))))
        return sparse.hstack(parts, format="csr")

    def fit(self, Xtr, ytr, Xva, yva, k: int) -> Logistic:
        from sklearn.linear_model import LogisticRegression
        num = Xtr[:, :len(self.encoder.numeric)]
        with warnings.catch_warnings():   # a feature missing in every training year: all-NaN column
            warnings.simplefilter("ignore", RuntimeWarning)
            self.center = np.nanmedian(num, axis=0)
            self.scale = np.nanstd(num, axis=0)
        self.center = np.where(np.isnan(self.center), 0.0, self.center)
        self.scale = np.where(~np.isfinite(self.scale) | (self.scale == 0), 1.0, self.scale)
        self.lr = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(self._design(Xtr), ytr)
        self.k = k
        self.prior = (np.bincount(ytr, minlength=k) / len(ytr)).tolist()
        self.calibrator = Calibrator.fit(self._raw(Xva), yva, k)
        return self

    def _raw(self, X) -> np.ndarray:
        p = np.zeros((len(X), self.k))
        p[:, self.lr.classes_] = self.lr.predict_proba(self._design(X))
        return p

    def proba(self, X) -> np.ndarray:
        return self.calibrator.apply(self._raw(X))


# --------------------------------------------------------------------------- the model
@dataclass
class SeverityModel:
    """Both heads over one encoder; what the registry stores and the API serves."""
    features: dict[str, str]           # name -> kind, in order
    encoder: Encoder
    heads: dict[str, Head]
    split: Split
    data_version: str = ""

    def frame(self, rows: pd.DataFrame | list[dict] | dict) -> np.ndarray:
        """Rows (a frame, a list of mappings, or one mapping) -> the encoded matrix; refuses
        a denylisted column among the model's features."""
        if isinstance(rows, dict):
            F.assert_allowed(c for c in rows if c in self.features)
            return self.encoder.row(rows)
        df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
        F.assert_allowed(c for c in df.columns if c in self.features)
        return self.encoder.transform(df)

    def _predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        sev, fat = self.heads["severity"], self.heads["fatal"]
        p = sev.proba(X)
        out = {"predicted_class": np.asarray(sev.classes, dtype=object)[decide(p, sev.prior)]}
        out.update({f"p_{c.lower()}": p[:, i] for i, c in enumerate(sev.classes)})
        out["p_fatal_outcome"] = fat.proba(X)[:, 1]
        return out

    def predict(self, rows) -> pd.DataFrame:
        """Predicted class (four classes), its calibrated probabilities, and the fatal head's
        probability."""
        index = rows.index if isinstance(rows, pd.DataFrame) else None
        return pd.DataFrame(self._predict(self.frame(rows)), index=index)

    def threads(self, n: int) -> SeverityModel:
        """Threads XGBoost uses per prediction (a server answering one row per request: 1)."""
        for head in self.heads.values():
            head.booster.set_param({"nthread": n})
        return self

    def explain(self, row: dict, top: int = 5) -> dict:
        """One feature row in: the four-class probabilities, the predicted class, the fatal
        head's probability and the ``top`` features pushing it (TreeSHAP, log-odds of a
        fatal outcome; positive pushes toward fatal)."""
        X = self.frame(dict(row))
        pred = self._predict(X)
        contrib = self.heads["fatal"].contributions(X)[0]
        order = np.argsort(-np.abs(contrib[:-1]))[:top]
        return {
            "predicted_class": str(pred["predicted_class"][0]),
            "probabilities": {c: float(pred[f"p_{c.lower()}"][0]) for c in self.heads["severity"].classes},
            "p_fatal_outcome": float(pred["p_fatal_outcome"][0]),
            "contributions": [{"feature": self.encoder.columns[j], "value": self.encoder.display(X, j),
                               "shap_log_odds": float(contrib[j])} for j in order],
            "base_log_odds": float(contrib[-1]),
        }

    # ---- persistence: a directory with model.json and one booster file per head
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"features": self.features, "encoder": asdict(self.encoder), "split": asdict(self.split),
                "data_version": self.data_version, "heads": {}}
        for name, h in self.heads.items():
            h.booster.save_model(str(directory / f"{name}.ubj"))
            meta["heads"][name] = {"target": h.target, "classes": list(h.classes), "prior": h.prior,
                                   "calibrator": asdict(h.calibrator), "best_iteration": h.best_iteration,
                                   "shape": list(h.shape)}
        (directory / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> SeverityModel:
        import xgboost as xgb
        meta = json.loads((Path(directory) / "model.json").read_text(encoding="utf-8"))
        heads = {}
        for name, h in meta["heads"].items():
            booster = xgb.Booster()
            booster.load_model(str(Path(directory) / f"{name}.ubj"))
            heads[name] = Head(h["target"], tuple(h["classes"]), h["prior"], Calibrator(**h["calibrator"]),
                               booster, h["best_iteration"], tuple(h.get("shape", ())))
        split = Split(*(tuple(meta["split"][k]) for k in ("train_years", "valid_years", "test_years")))
        return cls(meta["features"], Encoder(**meta["encoder"]), heads, split, meta["data_version"])


# --------------------------------------------------------------------------- training
@dataclass
class Trained:
    model: SeverityModel
    metrics: dict                      # head -> model name -> metrics on the test years
    sizes: dict                        # train / valid / test events
    seconds: float
    test: np.ndarray = field(repr=False)       # encoded test features
    test_y: dict = field(repr=False)           # head -> codes
    test_proba: dict = field(repr=False)       # head -> model name -> probabilities
    example: pd.DataFrame = field(repr=False, default=None)   # a few raw training rows (MLflow's input example)


MODELS = ("xgboost", "logistic", "majority")


def train(df: pd.DataFrame, *, params: Params | None = None, valid_share: float = 0.15,
          test_share: float = 0.15, threads: int = 2, data_version: str = "",
          features: dict[str, str] | None = None) -> Trained:
    """Train both heads and both baselines on a time-based split of a features frame
    (:func:`features.build`); metrics on the test years. Refuses a denylisted column."""
    params = params or Params()
    kinds = features or {f.name: f.kind for f in F.FEATURES}
    F.assert_allowed(kinds)
    absent = [c for c in kinds if c not in df.columns]
    if absent:
        raise ModelError(f"features frame lacks {absent}")
    started = time.perf_counter()
    years = pd.to_datetime(df["event_date"]).dt.year
    split = time_split(years, valid_share, test_share)
    part = split.label(years)
    tr, va, te = (df[part == p] for p in ("train", "valid", "test"))
    encoder = Encoder.fit(tr, kinds)
    Xtr, Xva, Xte = (encoder.transform(d) for d in (tr, va, te))
    heads, metrics, test_y, test_proba = {}, {}, {}, {}
    for name, (target, classes) in HEADS.items():
        ytr, yva, yte = (_codes(d[target], classes) for d in (tr, va, te))
        k = len(classes)
        head = _fit_head(name, encoder, Xtr, ytr, Xva, yva, params, threads)
        heads[name] = head
        logistic = Logistic(encoder).fit(Xtr, ytr, Xva, yva, k)
        majority = np.tile(head.prior, (len(Xte), 1))
        probas = {"xgboost": head.proba(Xte), "logistic": logistic.proba(Xte), "majority": majority}
        preds = {"xgboost": decide(probas["xgboost"], head.prior),
                 "logistic": decide(probas["logistic"], logistic.prior),
                 "majority": np.full(len(Xte), int(np.argmax(head.prior)))}
        metrics[name] = {m: evaluate(yte, probas[m], preds[m], classes) for m in MODELS}
        test_y[name], test_proba[name] = yte, probas
    model = SeverityModel(dict(kinds), encoder, heads, split, data_version)
    return Trained(model, metrics, {"train": len(tr), "valid": len(va), "test": len(te)},
                   time.perf_counter() - started, Xte, test_y, test_proba, tr[list(kinds)].head(5))


# --------------------------------------------------------------------------- plots
def plots(trained: Trained) -> dict[str, bytes]:
    """Every plot of a training, as PNG: reliability, confusion matrix, importance, SHAP summary."""
    from .analytics import png
    return {"reliability.png": png(plot_reliability(trained)), "confusion.png": png(plot_confusion(trained)),
            "importance.png": png(plot_importance(trained.model)), "shap_summary.png": png(plot_shap(trained))}


def plot_reliability(trained: Trained, head: str = "fatal"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect")
    y = trained.test_y[head]
    for m in MODELS:
        p = trained.test_proba[head][m]
        r = reliability(y if p.shape[1] == 2 else (y == 0).astype(int), p[:, 1] if p.shape[1] == 2 else p[:, 0])
        ax.plot(r["predicted"], r["observed"], marker="o",
                label=f"{m} (ECE {trained.metrics[head][m]['ece']:.3f})")
    ax.set_xlabel("predicted probability of a fatal outcome")
    ax.set_ylabel("observed share")
    ax.set_title(f"Reliability on the test years ({trained.model.split.describe()['test']})")
    ax.legend(fontsize=8)
    return fig


def plot_confusion(trained: Trained, head: str = "severity"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    classes = trained.model.heads[head].classes
    cm = np.asarray(trained.metrics[head]["xgboost"]["confusion"])
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("XGBoost, test years")
    return fig


def importance(model: SeverityModel, head: str = "fatal") -> pd.DataFrame:
    gain = model.heads[head].booster.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    rows = [(c, gain.get(c, 0.0) / total) for c in model.encoder.columns]
    return pd.DataFrame(rows, columns=["feature", "gain_share"]).sort_values("gain_share", ascending=False,
                                                                              ignore_index=True)


def plot_importance(model: SeverityModel, head: str = "fatal", top: int = 15):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    imp = importance(model, head).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(imp) + 1))
    ax.barh(imp["feature"], imp["gain_share"], color="#4c72b0")
    ax.set_xlabel("share of total gain")
    ax.set_title(f"Feature importance ({head} head)")
    return fig


def plot_shap(trained: Trained, head: str = "fatal", rows: int = 2000):
    """SHAP summary (beeswarm) of the fatal head on up to ``rows`` test events."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap
    X = trained.test[:rows]
    values = trained.model.heads[head].contributions(X)[:, :-1]
    # colour: the value for numbers, the level's index for categories
    shap.summary_plot(values, X, feature_names=trained.model.encoder.columns, show=False, max_display=15,
                      plot_size=(7, 5.5))
    fig = plt.gcf()
    fig.suptitle("SHAP values, log-odds of a fatal outcome (test years)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- reports
HEAD_TITLES = {"fatal": "fatal vs not fatal", "severity": "highest injury (FATL/SERS/MINR/NONE)"}


def summary(trained: Trained) -> dict:
    """What the registry keeps next to the model (``metrics.json``) and ``ntsb model info`` shows."""
    return {"split": trained.model.split.describe(),
            "split_years": {k: list(v) for k, v in asdict(trained.model.split).items()},
            "sizes": trained.sizes, "data_version": trained.model.data_version,
            "training_seconds": round(trained.seconds, 2), "metrics": trained.metrics}


def flat_metrics(trained: Trained) -> dict[str, float]:
    """``<head>.<model>.<metric>`` for MLflow (recall per class as ``recall_<class>``)."""
    out = {}
    for head, by_model in trained.metrics.items():
        for m, vals in by_model.items():
            for k, v in vals.items():
                if k == "recall":
                    out.update({f"{head}.{m}.recall_{c}": r for c, r in v.items() if r is not None})
                elif isinstance(v, (int, float)) and v is not None:
                    out[f"{head}.{m}.{k}"] = float(v)
    return out


def _n(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


def metrics_markdown(metrics: dict) -> str:
    """One table per head: the model next to both baselines on the test years."""
    parts = []
    for head, by_model in metrics.items():
        classes = list(next(iter(by_model.values()))["recall"])
        head_row = ["model", "ROC-AUC", "PR-AUC", "macro-F1", "accuracy", "ECE",
                    *(f"recall {c}" for c in classes)]
        lines = [f"**{HEAD_TITLES.get(head, head)}**", "", "| " + " | ".join(head_row) + " |",
                 "|" + "---|" * len(head_row)]
        for m, v in by_model.items():
            cells = [m, _n(v["roc_auc"]), _n(v["pr_auc"]), _n(v["macro_f1"]), _n(v["accuracy"]), _n(v["ece"]),
                     *(_n(v["recall"][c]) for c in classes)]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def metrics_table(trained: Trained) -> str:
    return metrics_markdown(trained.metrics)


def card(trained: Trained, name: str, version: str, releases: str) -> str:
    """The model card: data version, split, metrics against the baselines, known limits."""
    s, sizes = trained.model.split, trained.sizes
    cm = trained.metrics["severity"]["xgboost"]["confusion"]
    classes = trained.model.heads["severity"].classes
    confusion = ["| true \\ predicted | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    confusion += [f"| {c} | " + " | ".join(str(x) for x in row) + " |" for c, row in zip(classes, cm)]
    heads = "; ".join(f"{h}: {trained.model.heads[h].best_iteration + 1} trees of depth "
                      f"{trained.model.heads[h].shape[0]}" for h in HEADS)
    return "\n".join([
        f"# Model card: {name} version {version}",
        "",
        "Predicts, from what is known when the flight begins or at the moment of the occurrence, whether an "
        "NTSB-investigated event ends with a fatality and its highest injury level.",
        "",
        "## Data",
        f"- data version `{trained.model.data_version}`; releases: {releases}",
        f"- {len(trained.model.features)} features (leakage audit in docs/ml.md); events with a known highest injury only",
        f"- split by event year: train {s.describe()['train']} ({sizes['train']} events), "
        f"validation {s.describe()['valid']} ({sizes['valid']}), test {s.describe()['test']} ({sizes['test']})",
        "",
        "## Training",
        f"- XGBoost (hist, native categories), balanced class weights, early stopping on the validation years: {heads}",
        "- probabilities recalibrated on the validation years; predicted class = highest calibrated probability "
        "relative to the class's share of the training events",
        "- baselines on the same split: majority class; logistic regression (balanced, calibrated the same way)",
        "",
        "## Metrics on the test years",
        "",
        metrics_markdown(trained.metrics),
        "",
        "Confusion matrix (XGBoost, four classes):",
        "",
        *confusion,
        "",
        "## Known limits",
        "- NTSB events are accidents and incidents, not flights: the model estimates the outcome given that an "
        "event happened, never the risk of flying.",
        "- The most recent years are also the least complete: recent events wait for their final reports, so the "
        "test years' mix shifts as releases arrive.",
        "- Validation years serve both early stopping and calibration, so validation scores are optimistic; only "
        "test-year numbers are reported.",
        "- Missing values are informative in NTSB data (older forms, incidents): the model uses them as such.",
        "",
    ])
