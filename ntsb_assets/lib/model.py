"""The severity model: a time-based split, candidate families trained on the same split
(XGBoost, a random forest, a logistic regression), each with two heads (fatal or not; highest
injury in four classes), the majority baseline, the metrics, calibration, the champion's
choice on the validation years, and explanations. Pure Python over a features frame
(:mod:`.features`); MLflow lives in :mod:`.tracking`, Dagster in ``ntsb_assets.ml``. See
docs/ml.md.

Decisions, each documented in docs/ml.md:

- The split is by event year: the most recent years holding ``test_share`` of the events are
  the test set, the years before them holding ``valid_share`` the validation set, the rest
  trains. Never at random: that would let a model learn the years it is scored on.
- Each family is tuned on the validation years: XGBoost's learning rate and tree shape (depth,
  minimum child weight; trees by early stopping), the forest's depth, the logistic
  regression's regularisation. All train with balanced class weights; every family's
  probabilities are then recalibrated on the validation years (multinomial logistic
  regression on the log-probabilities: Platt scaling for two classes, "vector scaling" for
  four).
- Validation metrics use calibrators fitted on the other half of the validation years
  (cross-fitted), so a family's validation ECE is not scored on its own calibration data.
- The champion family is chosen on the validation years only: among the families whose
  heads beat the majority baseline's ROC-AUC by a margin and whose fatal head is calibrated
  (ECE under a bound), the highest fatal ROC-AUC. The test years are reported, never used to
  choose.
- The predicted class is the one whose calibrated probability is highest relative to its
  share of the training events (the balanced decision rule class weighting aims at); the
  majority baseline always predicts the majority class.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xgboost as xgb

from . import features as F

OTHER = "(other)"  # a category level too rare in training, or never seen
MIN_LEVEL = 5  # events a level needs in training to be its own category
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
FREQUENCY_OF = F.FREQUENCY_OF  # categories that also enter as log(1 + training events of the level)


@dataclass
class Encoder:
    """Raw feature values -> the float matrix the models read: numbers and flags as
    themselves, the frequency of the levels of ``FREQUENCY_OF`` on the training years,
    categories as the index of their level among the training levels (rare or unseen levels
    -> OTHER, the last); NaN is missing. XGBoost is told which columns are categorical
    (feature type "c")."""

    numeric: list[str]
    categories: dict[str, list[str]]
    frequencies: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def fit(cls, df: pd.DataFrame, kinds: dict[str, str]) -> Encoder:
        numeric = [c for c, k in kinds.items() if k != "category"]
        cats, freqs = {}, {}
        for c, k in kinds.items():
            if k == "category":
                counts = df[c].dropna().astype(str).value_counts()
                cats[c] = sorted(counts[counts >= MIN_LEVEL].index) + [OTHER]
                if c in FREQUENCY_OF:
                    freqs[c] = {str(v): int(n) for v, n in counts.items()}
        return cls(numeric, cats, freqs)

    @property
    def quantitative(self) -> list[str]:
        """The numeric columns of the matrix, in order: the numbers, then the frequencies."""
        return [*self.numeric, *(f"{c}_frequency" for c in self.frequencies)]

    @property
    def columns(self) -> list[str]:
        return [*self.quantitative, *self.categories]

    @property
    def types(self) -> list[str]:
        return ["q"] * len(self.quantitative) + ["c"] * len(self.categories)

    def feature_of(self, column: str) -> str:
        """The feature a matrix column comes from (``make_frequency`` -> ``make``)."""
        return next((c for c in self.frequencies if column == f"{c}_frequency"), column)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        missing = [
            c for c in dict.fromkeys([*self.numeric, *self.frequencies, *self.categories]) if c not in df.columns
        ]
        if missing:
            raise ModelError(f"feature row lacks {missing}")
        out = np.empty((len(df), len(self.columns)))
        for j, c in enumerate(self.numeric):
            out[:, j] = _numbers(df[c])
        # a value's frequency or level is looked up once per distinct value, not once per row
        for j, (c, counts) in enumerate(self.frequencies.items(), start=len(self.numeric)):
            out[:, j] = np.log1p(_per_value(df[c], counts, other=0))
        for j, (c, index) in enumerate(self.level_index.items(), start=len(self.quantitative)):
            out[:, j] = _per_value(df[c], index, other=len(index) - 1)  # unseen: OTHER
        return out

    @property
    def level_index(self) -> dict[str, dict[str, int]]:
        """Each category's levels -> their position (OTHER, the last, for any other value)."""
        if not hasattr(self, "_index"):
            self._index = {c: {v: i for i, v in enumerate(levels)} for c, levels in self.categories.items()}
        return self._index

    def row(self, values: dict) -> np.ndarray:
        """One feature row (a mapping) as a 1 x features matrix, without pandas: the API's path."""
        missing = [c for c in dict.fromkeys([*self.numeric, *self.frequencies, *self.categories]) if c not in values]
        if missing:
            raise ModelError(f"feature row lacks {missing}")
        out = []
        for c in self.numeric:
            out.append(_number(values[c]))
        for c, counts in self.frequencies.items():
            v = values[c]
            out.append(np.nan if _missing(v) else float(np.log1p(counts.get(str(v), 0))))
        for c, index in self.level_index.items():
            v = values[c]
            out.append(np.nan if _missing(v) else float(index.get(str(v), len(index) - 1)))
        return np.array([out])

    def display(self, X: np.ndarray, j: int, i: int = 0):
        """The raw value behind cell (i, j): a level for categories, a number otherwise."""
        v = X[i, j]
        if np.isnan(v):
            return None
        if j < len(self.quantitative):
            return float(v)
        return self.categories[self.columns[j]][int(v)]


def _numbers(column: pd.Series) -> np.ndarray:
    """A feature column as float64, NaN where missing or not a number. Numbers and flags
    (numpy's or pandas' nullable types) convert directly; anything else value by value."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(column.astype("object"), errors="coerce").astype("float64").to_numpy()


def _per_value(column: pd.Series, of: Mapping[str, int], other: int) -> np.ndarray:
    """``of[value as text]`` (``other`` for a value it lacks) for each row's value, NaN where
    it is missing; looked up once per distinct value."""
    codes, uniques = pd.factorize(column.astype("string"))
    per = np.array([of.get(str(u), other) for u in uniques] + [np.nan], dtype="float64")
    return per[codes]  # a missing value's code is -1: the NaN appended last


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
    rows = [
        (b, int((idx == b).sum()), float(p[idx == b].mean()), float(y[idx == b].mean()))
        for b in range(bins)
        if (idx == b).any()
    ]
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
    out["recall"] = {
        str(c): (float((pred[y == i] == i).mean()) if (y == i).any() else None) for i, c in enumerate(classes)
    }
    out["ece"] = ece(y, proba)
    out["confusion"] = confusion_matrix(y, pred, labels=list(range(k))).tolist()
    return out


# --------------------------------------------------------------------------- the heads
FAMILIES = ("xgboost", "random_forest", "logistic")  # the candidates, trained on the same split
MODELS = (*FAMILIES, "majority")


@dataclass
class Linear:
    """A fitted logistic regression, applied with numpy: scaled numbers with missing
    indicators and one-hot categories (the encoder's levels) times the coefficients."""

    n_quant: int
    levels: list[int]  # levels per category column
    center: list[float]
    scale: list[float]
    coef: list[list[float]]  # one row (two classes) or one per class seen
    intercept: list[float]
    classes: list[int]  # the classes the rows are for
    design_mean: list[float]  # the training rows' mean design (SHAP's baseline)
    k: int

    def design(self, X: np.ndarray):
        """The design matrix, sparse (a category of thousands of levels is thousands of columns)."""
        from scipy import sparse

        m = self.n_quant
        num = X[:, :m]
        parts = [
            sparse.csr_matrix(np.nan_to_num((num - np.asarray(self.center)) / np.asarray(self.scale))),
            sparse.csr_matrix(np.isnan(num).astype(float)),
        ]
        for j, n in enumerate(self.levels, start=m):
            codes = X[:, j]
            ok = ~np.isnan(codes)
            parts.append(
                sparse.csr_matrix((np.ones(ok.sum()), (np.flatnonzero(ok), codes[ok].astype(int))), shape=(len(X), n))
            )
        return sparse.hstack(parts, format="csr")

    def owner(self) -> np.ndarray:
        """The matrix column (feature) each design column comes from."""
        m = self.n_quant
        return np.concatenate(
            [np.arange(m), np.arange(m), *[np.full(n, j) for j, n in enumerate(self.levels, start=m)]]
        ).astype(int)

    def margin(self, X: np.ndarray) -> np.ndarray:
        return self.design(X) @ np.asarray(self.coef).T + np.asarray(self.intercept)

    def raw(self, X: np.ndarray) -> np.ndarray:
        z = self.margin(X)
        p = np.zeros((len(X), self.k))
        if z.shape[1] == 1:  # two classes: the row is for the second
            p1 = 1 / (1 + np.exp(-z[:, 0]))
            p[:, self.classes[0]], p[:, self.classes[1]] = 1 - p1, p1
        else:
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            p[:, self.classes] = e / e.sum(axis=1, keepdims=True)
        return p

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP values of a linear model (features independent): coefficient times the
        design's distance from the training mean, summed over each feature's design columns;
        the last column is the bias. In the margin (log-odds for two classes)."""
        from scipy import sparse

        owner, n_feat = self.owner(), self.n_quant + len(self.levels)
        # design column -> its feature, as a (design x features) 0/1 matrix
        to_feature = sparse.csr_matrix(
            (np.ones(len(owner)), (np.arange(len(owner)), owner)), shape=(len(owner), n_feat)
        )
        design, mean = self.design(X), np.asarray(self.design_mean)
        out = []
        for w, b in zip(np.asarray(self.coef), self.intercept, strict=True):
            phi = np.zeros((len(X), n_feat + 1))
            # sum over a feature's columns of w * (x - mean) = (x * w) grouped - (mean * w) grouped
            phi[:, :-1] = np.asarray((design.multiply(w) @ to_feature).todense()) - to_feature.T @ (mean * w)
            phi[:, -1] = b + float(mean @ w)
            out.append(phi)
        if len(out) == 1:
            return out[0]
        full = np.zeros((len(X), self.k, n_feat + 1))
        for row, cls in enumerate(self.classes):
            full[:, cls] = out[row]
        return full


@dataclass
class Head:
    """One target of one family: its estimator (an XGBoost booster for the boosted trees and
    the forest, a :class:`Linear` for the logistic regression), its calibrator and the
    training class shares."""

    target: str
    classes: tuple[str, ...]
    prior: list[float]
    calibrator: Calibrator
    booster: xgb.Booster | Linear = field(repr=False)
    best_iteration: int = 0
    shape: dict = field(default_factory=dict)  # the settings chosen on the validation years
    family: str = "xgboost"

    def raw(self, X: np.ndarray) -> np.ndarray:
        if isinstance(self.booster, Linear):
            return self.booster.raw(X)
        m = self.booster.inplace_predict(X, iteration_range=(0, self.best_iteration + 1))
        return np.column_stack([1 - m, m]) if m.ndim == 1 else m

    def proba(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator.apply(self.raw(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP values in the model's margin (log-odds for two classes; TreeSHAP for the
        trees); the last column is the bias. For more classes: (rows, classes, features + 1)."""
        if isinstance(self.booster, Linear):
            return self.booster.contributions(X)
        import xgboost as xgb

        d = xgb.DMatrix(
            X,
            feature_names=self.booster.feature_names,
            feature_types=self.booster.feature_types,
            enable_categorical=True,
        )
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
    """The candidates' settings. Searched on the validation years: XGBoost's learning rate
    and tree shape (each (max_depth, min_child_weight) in ``shapes``, trees by early
    stopping), the forest's depth, the logistic regression's inverse regularisation C."""

    learning_rates: tuple = (0.05, 0.1)
    shapes: tuple = ((2, 5.0), (4, 5.0), (6, 10.0))
    subsample: float = 0.85
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_rounds: int = 1500
    early_stopping_rounds: int = 60  # 0: no early stopping, every round kept
    max_cat_to_onehot: int = 8
    forest_trees: int = 100
    forest_depths: tuple = (8, 12)
    logistic_c: tuple = (0.1, 1.0)
    seed: int = 7


def _score(y: np.ndarray, proba: np.ndarray) -> float:
    """What the search maximises on the validation years: ROC-AUC for two classes, minus the
    log loss for more (the same as the boosted trees' early stopping)."""
    from sklearn.metrics import log_loss, roc_auc_score

    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1])) if len(np.unique(y)) == 2 else 0.5
    return -float(log_loss(y, np.clip(proba, 1e-9, 1), labels=list(range(proba.shape[1]))))


def _xgb_base(k: int, params: Params, threads: int) -> dict:
    return {
        "tree_method": "hist",
        "max_cat_to_onehot": params.max_cat_to_onehot,
        "seed": params.seed,
        "nthread": threads,
        **(
            {"objective": "binary:logistic", "eval_metric": "auc"}
            if k == 2
            else {"objective": "multi:softprob", "num_class": k, "eval_metric": "mlogloss"}
        ),
    }


def _matrices(enc: Encoder, k: int, Xtr, ytr, Xva, yva):
    import xgboost as xgb

    kw = {"feature_names": enc.columns, "feature_types": enc.types, "enable_categorical": True}
    return (
        xgb.DMatrix(Xtr, label=ytr, weight=_balanced(ytr, k), **kw),
        xgb.DMatrix(Xva, label=yva, weight=_balanced(yva, k), **kw),
    )


def _fit_xgboost(k: int, enc: Encoder, Xtr, ytr, Xva, yva, params: Params, threads: int):
    """Boosted trees: every learning rate and shape, trees by early stopping; the best
    validation score wins. Returns (booster, last iteration, settings)."""
    import xgboost as xgb

    dtr, dva = _matrices(enc, k, Xtr, ytr, Xva, yva)
    base = {
        **_xgb_base(k, params, threads),
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "lambda": params.reg_lambda,
    }
    best: Any = None  # (score, estimator, ...) of the best candidate so far
    for eta in params.learning_rates:
        for depth, mcw in params.shapes:
            booster = xgb.train(
                {**base, "eta": eta, "max_depth": depth, "min_child_weight": mcw},
                dtr,
                num_boost_round=params.max_rounds,
                evals=[(dva, "valid")],
                early_stopping_rounds=params.early_stopping_rounds or None,
                verbose_eval=False,
            )
            last = booster.best_iteration if params.early_stopping_rounds else booster.num_boosted_rounds() - 1
            p = booster.inplace_predict(Xva, iteration_range=(0, last + 1))
            score = _score(yva, np.column_stack([1 - p, p]) if p.ndim == 1 else p)
            if best is None or score > best[0]:
                best = (
                    score,
                    booster,
                    int(last),
                    {"learning_rate": eta, "max_depth": depth, "min_child_weight": mcw, "trees": int(last) + 1},
                )
    return best[1:]


def _fit_forest(k: int, enc: Encoder, Xtr, ytr, Xva, yva, params: Params, threads: int):
    """A random forest (XGBoost's: bagged, fully grown trees with features drawn per split, one
    round, averaged), each depth in ``forest_depths``; the best validation score wins."""
    import xgboost as xgb

    dtr, _ = _matrices(enc, k, Xtr, ytr, Xva, yva)
    base = {
        **_xgb_base(k, params, threads),
        "eta": 1.0,
        "subsample": 0.632,
        "colsample_bynode": 0.6,
        "num_parallel_tree": params.forest_trees,
        "lambda": 1e-5,
        "min_child_weight": 2.0,
    }
    best: Any = None  # (score, estimator, ...) of the best candidate so far
    for depth in params.forest_depths:
        booster = xgb.train({**base, "max_depth": depth}, dtr, num_boost_round=1)
        p = booster.inplace_predict(Xva)
        score = _score(yva, np.column_stack([1 - p, p]) if p.ndim == 1 else p)
        if best is None or score > best[0]:
            best = score, booster, 0, {"max_depth": depth, "trees": params.forest_trees}
    return best[1:]


def _fit_logistic(k: int, enc: Encoder, Xtr, ytr, Xva, yva, params: Params, threads: int):
    """Median imputation with missing indicators, scaled numbers, one-hot categories,
    balanced class weights; each C in ``logistic_c``, the best validation score wins."""
    from sklearn.linear_model import LogisticRegression

    m = len(enc.quantitative)
    num = Xtr[:, :m]
    with warnings.catch_warnings():  # a feature missing in every training year: all-NaN column
        warnings.simplefilter("ignore", RuntimeWarning)
        center, scale = np.nanmedian(num, axis=0), np.nanstd(num, axis=0)
    center = np.where(np.isnan(center), 0.0, center)
    scale = np.where(~np.isfinite(scale) | (scale == 0), 1.0, scale)
    shell = Linear(m, [len(v) for v in enc.categories.values()], center.tolist(), scale.tolist(), [], [], [], [], k)
    Dtr, Dva = shell.design(Xtr), shell.design(Xva)
    best: Any = None  # (score, estimator, ...) of the best candidate so far
    for c in params.logistic_c:
        lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(Dtr, ytr)
        p = np.zeros((len(Xva), k))
        p[:, lr.classes_] = lr.predict_proba(Dva)
        score = _score(yva, p)
        if best is None or score > best[0]:
            best = score, lr, c
    _, lr, c = best
    linear = Linear(
        m,
        shell.levels,
        shell.center,
        shell.scale,
        lr.coef_.tolist(),
        lr.intercept_.tolist(),
        [int(x) for x in lr.classes_],
        np.asarray(Dtr.mean(axis=0)).ravel().tolist(),
        k,
    )
    return linear, 0, {"C": c}


FITS = {"xgboost": _fit_xgboost, "random_forest": _fit_forest, "logistic": _fit_logistic}


def _fit_head(family: str, name: str, enc: Encoder, Xtr, ytr, Xva, yva, params: Params, threads: int) -> Head:
    target, classes = HEADS[name]
    k = len(classes)
    if len(np.unique(ytr)) < 2:
        raise ModelError(f"{target}: the training years hold a single class")
    estimator, last, shape = FITS[family](k, enc, Xtr, ytr, Xva, yva, params, threads)
    prior = (np.bincount(ytr, minlength=k) / len(ytr)).tolist()
    head = Head(target, tuple(classes), prior, Calibrator([[1.0]], [0.0]), estimator, last, shape, family)
    head.calibrator = Calibrator.fit(head.raw(Xva), yva, k)
    return head


def crossfit(raw: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Calibrated validation probabilities, each half of the rows calibrated on the other."""
    out = np.empty_like(raw)
    half = np.arange(len(y)) % 2
    for h in (0, 1):
        fit, app = half != h, half == h
        out[app] = Calibrator.fit(raw[fit], y[fit], k).apply(raw[app]) if app.any() else raw[app]
    return out


# --------------------------------------------------------------------------- the model
@dataclass
class SeverityModel:
    """Both heads of the champion family over one encoder; what the registry stores and the
    API serves."""

    features: dict[str, str]  # name -> kind, in order
    encoder: Encoder
    heads: dict[str, Head]
    split: Split
    data_version: str = ""

    @property
    def family(self) -> str:
        return self.heads["fatal"].family

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
            if not isinstance(head.booster, Linear):
                head.booster.set_param({"nthread": n})
        return self

    def explain(self, row: dict, top: int = 5) -> dict:
        """One feature row in: the four-class probabilities, the predicted class, the fatal
        head's probability and the ``top`` features pushing it (exact SHAP values, log-odds of
        a fatal outcome before calibration; positive pushes toward fatal)."""
        X = self.frame(dict(row))
        pred = self._predict(X)
        contrib = self.heads["fatal"].contributions(X)[0]
        order = np.argsort(-np.abs(contrib[:-1]))[:top]
        return {
            "predicted_class": str(pred["predicted_class"][0]),
            "probabilities": {c: float(pred[f"p_{c.lower()}"][0]) for c in self.heads["severity"].classes},
            "p_fatal_outcome": float(pred["p_fatal_outcome"][0]),
            "contributions": [
                {
                    "feature": self.encoder.columns[j],
                    "value": self.encoder.display(X, j),
                    "shap_log_odds": float(contrib[j]),
                }
                for j in order
            ],
            "base_log_odds": float(contrib[-1]),
        }

    # ---- persistence: a directory with model.json and one booster file per tree head
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "features": self.features,
            "encoder": asdict(self.encoder),
            "split": asdict(self.split),
            "data_version": self.data_version,
            "heads": {},
        }
        for name, h in self.heads.items():
            entry = {
                "target": h.target,
                "classes": list(h.classes),
                "prior": h.prior,
                "family": h.family,
                "calibrator": asdict(h.calibrator),
                "best_iteration": h.best_iteration,
                "shape": h.shape,
            }
            if isinstance(h.booster, Linear):
                entry["linear"] = asdict(h.booster)
            else:
                h.booster.save_model(str(directory / f"{name}.ubj"))
            meta["heads"][name] = entry
        (directory / "model.json").write_text(json.dumps(plain(meta), indent=1), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> SeverityModel:
        import xgboost as xgb

        meta = json.loads((Path(directory) / "model.json").read_text(encoding="utf-8"))
        heads = {}
        for name, h in meta["heads"].items():
            estimator: xgb.Booster | Linear
            if "linear" in h:
                estimator = Linear(**h["linear"])
            else:
                estimator = xgb.Booster()
                estimator.load_model(str(Path(directory) / f"{name}.ubj"))
            shape = h.get("shape") or {}
            if isinstance(shape, list):  # saved before the candidates: (max_depth, min_child_weight)
                shape = dict(zip(("max_depth", "min_child_weight"), shape, strict=True))
            heads[name] = Head(
                h["target"],
                tuple(h["classes"]),
                h["prior"],
                Calibrator(**h["calibrator"]),
                estimator,
                h["best_iteration"],
                shape,
                h.get("family", "xgboost"),
            )
        split = Split(*(tuple(meta["split"][k]) for k in ("train_years", "valid_years", "test_years")))
        return cls(meta["features"], Encoder(**meta["encoder"]), heads, split, meta["data_version"])


# --------------------------------------------------------------------------- training
@dataclass
class Trained:
    model: SeverityModel  # the champion family's heads
    metrics: dict  # head -> model (family or majority) -> metrics on the test years
    valid_metrics: dict  # the same on the validation years (cross-fitted calibration)
    selection: dict  # the family chosen, why, and why not the others
    candidates: dict  # family -> head -> the settings the search chose
    sizes: dict  # train / valid / test events
    seconds: float
    test: np.ndarray = field(repr=False)  # encoded test features
    test_y: dict = field(repr=False)  # head -> codes
    test_proba: dict = field(repr=False)  # head -> model name -> probabilities
    example: pd.DataFrame = field(repr=False, default=None)  # a few raw training rows (MLflow's input example)


def select(valid_metrics: dict, auc_margin: float, max_ece: float) -> dict:
    """The champion family, on the validation years only: among the families whose heads
    beat the majority baseline's ROC-AUC by ``auc_margin`` and whose fatal head's ECE is at
    most ``max_ece``, the highest fatal ROC-AUC. When none passes, the best one anyway
    (its checks then fail and it does not become champion)."""
    why_not, passing = {}, []
    for fam in FAMILIES:
        reasons = []
        for head in HEADS:
            auc, base = valid_metrics[head][fam]["roc_auc"], valid_metrics[head]["majority"]["roc_auc"]
            if auc is None or base is None or auc < base + auc_margin:
                reasons.append(f"{head} ROC-AUC {_n(auc)} under the majority baseline's {_n(base)} + {auc_margin}")
        e = valid_metrics["fatal"][fam]["ece"]
        if e > max_ece:
            reasons.append(f"fatal ECE {e:.3f} over {max_ece}")
        if reasons:
            why_not[fam] = reasons
        else:
            passing.append(fam)
    auc = {fam: valid_metrics["fatal"][fam]["roc_auc"] or 0.0 for fam in FAMILIES}
    pool = passing or list(FAMILIES)
    family = max(pool, key=lambda f: (auc[f], -FAMILIES.index(f)))
    runner = max((f for f in pool if f != family), key=lambda f: auc[f], default=None)
    return {
        "family": family,
        "passed": bool(passing),
        "passing": passing,
        "not_passing": why_not,
        "valid_roc_auc": auc,
        "margin_over_next": (auc[family] - auc[runner]) if runner else None,
        "next": runner,
        "auc_margin": auc_margin,
        "max_ece": max_ece,
    }


def train(
    df: pd.DataFrame,
    *,
    params: Params | None = None,
    valid_share: float = 0.15,
    test_share: float = 0.15,
    threads: int = 2,
    data_version: str = "",
    features: dict[str, str] | None = None,
    auc_margin: float = 0.05,
    max_ece: float = 0.05,
) -> Trained:
    """Train every candidate family (both heads each) and the majority baseline on a
    time-based split of a features frame (:func:`features.build`), choose the champion family
    on the validation years (:func:`select`); metrics on both. Refuses a denylisted column."""
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
    fitted: dict[str, dict[str, Head]] = {fam: {} for fam in FAMILIES}
    metrics, valid_metrics, test_y, test_proba = {}, {}, {}, {}
    for name, (target, classes) in HEADS.items():
        ytr, yva, yte = (_codes(d[target], classes) for d in (tr, va, te))
        k = len(classes)
        prior = (np.bincount(ytr, minlength=k) / len(ytr)).tolist()
        probas = {"majority": np.tile(prior, (len(Xte), 1))}
        preds = {"majority": np.full(len(Xte), int(np.argmax(prior)))}
        valid = {
            "majority": evaluate(yva, np.tile(prior, (len(Xva), 1)), np.full(len(Xva), int(np.argmax(prior))), classes)
        }
        for fam in FAMILIES:
            head = fitted[fam][name] = _fit_head(fam, name, encoder, Xtr, ytr, Xva, yva, params, threads)
            probas[fam] = head.proba(Xte)
            preds[fam] = decide(probas[fam], head.prior)
            pv = crossfit(head.raw(Xva), yva, k)
            valid[fam] = evaluate(yva, pv, decide(pv, head.prior), classes)
        metrics[name] = {m: evaluate(yte, probas[m], preds[m], classes) for m in MODELS}
        valid_metrics[name] = {m: valid[m] for m in MODELS}
        test_y[name], test_proba[name] = yte, probas
    chosen = select(valid_metrics, auc_margin, max_ece)
    model = SeverityModel(dict(kinds), encoder, fitted[chosen["family"]], split, data_version)
    candidates = {fam: {h: fitted[fam][h].shape for h in HEADS} for fam in FAMILIES}
    return Trained(
        model,
        metrics,
        valid_metrics,
        chosen,
        candidates,
        {"train": len(tr), "valid": len(va), "test": len(te)},
        time.perf_counter() - started,
        Xte,
        test_y,
        test_proba,
        tr[list(kinds)].head(5),
    )


# --------------------------------------------------------------------------- plots
def plots(trained: Trained) -> dict[str, bytes]:
    """Every plot of a training, as PNG: reliability, confusion matrix, importance, SHAP summary."""
    from .analytics import png

    return {
        "reliability.png": png(plot_reliability(trained)),
        "confusion.png": png(plot_confusion(trained)),
        "importance.png": png(plot_importance(trained.model, trained.test)),
        "shap_summary.png": png(plot_shap(trained)),
    }


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
        ax.plot(r["predicted"], r["observed"], marker="o", label=f"{m} (ECE {trained.metrics[head][m]['ece']:.3f})")
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
    cm = np.asarray(trained.metrics[head][trained.model.family]["confusion"])
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{trained.model.family}, test years")
    return fig


def importance(model: SeverityModel, X: np.ndarray, head: str = "fatal") -> pd.DataFrame:
    """Each input's share of the mean absolute SHAP value over the rows ``X`` (any family)."""
    contrib = model.heads[head].contributions(X[:2000])
    mean = np.abs(contrib[..., :-1]).reshape(-1, contrib.shape[-1] - 1).mean(axis=0)
    total = mean.sum() or 1.0
    rows = list(zip(model.encoder.columns, mean / total, strict=True))
    return pd.DataFrame(rows, columns=["feature", "shap_share"]).sort_values(
        "shap_share", ascending=False, ignore_index=True
    )


def plot_importance(model: SeverityModel, X: np.ndarray, head: str = "fatal", top: int = 15):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imp = importance(model, X, head).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 0.3 * len(imp) + 1))
    ax.barh(imp["feature"], imp["shap_share"], color="#4c72b0")
    ax.set_xlabel("share of the mean |SHAP value| (test years)")
    ax.set_title(f"Feature importance ({model.family}, {head} head)")
    return fig


def plot_shap(trained: Trained, head: str = "fatal", rows: int = 2000, top: int = 15):
    """SHAP summary (beeswarm) of the fatal head on up to ``rows`` test events: for each of
    the ``top`` inputs by mean |SHAP value|, one point per event at its SHAP value, spread
    vertically where the values crowd, coloured by the input's value (for a category, its
    level's index) from low (blue) to high (red); missing values grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = np.asarray(trained.test[:rows], dtype=float)
    values = trained.model.heads[head].contributions(X)[:, :-1]
    names = trained.model.encoder.columns
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:top][::-1]  # the largest at the top
    fig, ax = plt.subplots(figsize=(7, 5.5))
    points = None
    for row, j in enumerate(order):
        v, x = values[:, j], X[:, j]
        y = row + _swarm(v)
        known = np.isfinite(x)
        ax.scatter(v[~known], y[~known], s=5, color="#9a9a9a", linewidths=0, rasterized=True)
        lo, hi = np.percentile(x[known], [5, 95]) if known.any() else (0.0, 1.0)
        shade = np.clip((x[known] - lo) / (hi - lo), 0, 1) if hi > lo else np.full(int(known.sum()), 0.5)
        points = ax.scatter(
            v[known], y[known], c=shade, s=5, cmap="coolwarm", vmin=0, vmax=1, linewidths=0, rasterized=True
        )
    ax.axvline(0, color="#999", lw=0.8, zorder=0)
    ax.set_yticks(range(len(order)), [names[j] for j in order])
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel("SHAP value (push on the log-odds of a fatal outcome)")
    if points is not None:
        bar = fig.colorbar(points, ax=ax, ticks=[0, 1], aspect=40, pad=0.02)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("input's value")
    fig.suptitle("SHAP values, log-odds of a fatal outcome (test years)", fontsize=10)
    fig.tight_layout()
    return fig


def _swarm(v: np.ndarray, width: float = 0.4, bins: int = 120) -> np.ndarray:
    """Vertical offsets that spread equal-ish values apart: the values fall into ``bins`` along
    the axis, and the points of a bin alternate above and below the line (0, +1, -1, +2, ...),
    scaled so that the most crowded bin spans +-``width``."""
    if len(v) == 0:
        return np.zeros(0)
    span = float(v.max() - v.min())
    b = np.zeros(len(v), dtype=int) if span == 0 else np.minimum(((v - v.min()) / span * bins).astype(int), bins - 1)
    counts = np.bincount(b, minlength=bins)
    by_bin = np.argsort(b, kind="stable")
    rank = np.empty(len(v), dtype=int)
    rank[by_bin] = np.arange(len(v)) - (np.cumsum(counts) - counts)[b[by_bin]]
    step = np.where(rank % 2 == 1, 1, -1) * ((rank + 1) // 2)
    return step * (width / max(int(counts.max()) // 2, 1))


# --------------------------------------------------------------------------- reports
HEAD_TITLES = {"fatal": "fatal vs not fatal", "severity": "highest injury (FATL/SERS/MINR/NONE)"}


def summary(trained: Trained) -> dict:
    """What the registry keeps next to the model (``metrics.json``) and ``ntsb model info``
    shows. Stable keys: ``champion_family``; ``metrics`` (test years) and ``valid_metrics``
    as ``<head>.<model>.<metric>``; ``candidates.<family>`` with the settings chosen for each
    head and its ``valid`` and ``test`` metrics; ``selection`` (why this family)."""
    return plain(
        {
            "split": trained.model.split.describe(),
            "split_years": {k: list(v) for k, v in asdict(trained.model.split).items()},
            "sizes": trained.sizes,
            "data_version": trained.model.data_version,
            "training_seconds": round(trained.seconds, 2),
            "champion_family": trained.model.family,
            "selection": trained.selection,
            "metrics": trained.metrics,
            "valid_metrics": trained.valid_metrics,
            "candidates": {
                fam: {
                    "settings": trained.candidates[fam],
                    "valid": {h: trained.valid_metrics[h][fam] for h in HEADS},
                    "test": {h: trained.metrics[h][fam] for h in HEADS},
                }
                for fam in FAMILIES
            },
        }
    )


def flat_metrics(trained: Trained) -> dict[str, float]:
    """``<head>.<model>.<metric>`` (test years) and ``valid.<head>.<model>.<metric>`` for MLflow
    (recall per class as ``recall_<class>``)."""
    out = {}
    for prefix, metrics in (("", trained.metrics), ("valid.", trained.valid_metrics)):
        for head, by_model in metrics.items():
            for m, vals in by_model.items():
                for k, v in vals.items():
                    if k == "recall":
                        out.update({f"{prefix}{head}.{m}.recall_{c}": r for c, r in v.items() if r is not None})
                    elif isinstance(v, (int, float)) and v is not None:
                        out[f"{prefix}{head}.{m}.{k}"] = float(v)
    return out


def plain(obj):
    """``obj`` with NumPy and pandas scalars and arrays made Python's own, tuples lists: what
    json.dumps, MLflow and Dagster metadata take. Which of them a computation returns can
    depend on the data (a count over an empty class, a comparison of NumPy floats)."""
    if isinstance(obj, dict):
        return {(k.item() if isinstance(k, np.generic) else k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def _n(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


def metrics_markdown(metrics: dict) -> str:
    """One table per head: every candidate family next to the majority baseline."""
    parts = []
    for head, by_model in metrics.items():
        classes = list(next(iter(by_model.values()))["recall"])
        head_row = ["model", "ROC-AUC", "PR-AUC", "macro-F1", "accuracy", "ECE", *(f"recall {c}" for c in classes)]
        lines = [
            f"**{HEAD_TITLES.get(head, head)}**",
            "",
            "| " + " | ".join(head_row) + " |",
            "|" + "---|" * len(head_row),
        ]
        for m, v in by_model.items():
            cells = [
                m,
                _n(v["roc_auc"]),
                _n(v["pr_auc"]),
                _n(v["macro_f1"]),
                _n(v["accuracy"]),
                _n(v["ece"]),
                *(_n(v["recall"][c]) for c in classes),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def metrics_table(trained: Trained) -> str:
    return metrics_markdown(trained.metrics)


def selection_text(trained: Trained) -> str:
    """Which family won, by how much, on which years, and why not the others."""
    sel, s = trained.selection, trained.model.split.describe()
    auc = sel["valid_roc_auc"]
    lines = [
        f"Champion family: **{sel['family']}**, chosen on the validation years ({s['valid']}) by the fatal "
        f"head's ROC-AUC, {auc[sel['family']]:.3f}"
        + (f", {sel['margin_over_next']:+.3f} over {sel['next']} ({auc[sel['next']]:.3f})" if sel["next"] else "")
        + f"; the test years ({s['test']}) are reported, not used to choose."
    ]
    if not sel["passed"]:
        lines.append(
            "No family passed the checks (ROC-AUC over the majority baseline by "
            f"{sel['auc_margin']}, fatal ECE at most {sel['max_ece']}): this version is not champion."
        )
    for fam, reasons in sel["not_passing"].items():
        lines.append(f"- {fam} did not pass: {'; '.join(reasons)}")
    return "\n".join(lines)


def card(trained: Trained, name: str, version: str, releases: str) -> str:
    """The model card: data version, split, the candidates on the validation and test years,
    the family chosen, known limits."""
    s, sizes, family = trained.model.split, trained.sizes, trained.model.family
    cm = trained.metrics["severity"][family]["confusion"]
    classes = trained.model.heads["severity"].classes
    confusion = ["| true \\ predicted | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    confusion += [f"| {c} | " + " | ".join(str(x) for x in row) + " |" for c, row in zip(classes, cm, strict=True)]
    settings = "; ".join(
        f"{fam}: " + ", ".join(f"{h} {json.dumps(plain(trained.candidates[fam][h]))}" for h in HEADS)
        for fam in FAMILIES
    )
    return "\n".join(
        [
            f"# Model card: {name} version {version}",
            "",
            "Predicts, from what is known when the flight begins or at the moment of the occurrence, whether an "
            "NTSB-investigated event ends with a fatality and its highest injury level.",
            "",
            "## Data",
            f"- data version `{trained.model.data_version}`; releases: {releases}",
            f"- {len(trained.model.features)} features (leakage audit in docs/ml.md); "
            "events with a known highest injury only",
            f"- split by event year: train {s.describe()['train']} ({sizes['train']} events), "
            f"validation {s.describe()['valid']} ({sizes['valid']}), test {s.describe()['test']} ({sizes['test']})",
            "",
            "## Candidates and the champion",
            "- trained on the same split: XGBoost (hist, native categories, early stopping), a random forest "
            "(XGBoost's, bagged trees), a logistic regression; all with balanced class weights, tuned on the "
            f"validation years ({settings})",
            "- probabilities recalibrated on the validation years; predicted class = highest calibrated probability "
            "relative to the class's share of the training events",
            "",
            selection_text(trained),
            "",
            "## Metrics on the validation years (cross-fitted calibration)",
            "",
            metrics_markdown(trained.valid_metrics),
            "",
            "## Metrics on the test years",
            "",
            metrics_markdown(trained.metrics),
            "",
            f"Confusion matrix ({family}, four classes, test years):",
            "",
            *confusion,
            "",
            "## Known limits",
            "- NTSB events are accidents and incidents, not flights: the model estimates the outcome given that an "
            "event happened, never the risk of flying.",
            "- The most recent years are also the least complete: recent events wait for their final reports, so the "
            "test years' mix shifts as releases arrive.",
            "- The validation years serve tuning, early stopping, calibration and the champion's choice: validation "
            "scores are optimistic; the test years are the honest estimate.",
            "- Missing values are informative in NTSB data (older forms, incidents): the model uses them as such.",
            "",
        ]
    )


# ---- the checks a trained version must pass to become the champion
CHECKS = {
    "beats_majority_baseline": "the champion family's ROC-AUC on the validation years above the majority "
    "baseline's by the margin, both heads",
    "calibrated": "the champion family's expected calibration error of P(fatal) on the validation years "
    "(cross-fitted) under the bound",
    "no_denylisted_feature": "no input of the registered model matches the leakage denylist",
}


def evaluate_checks(
    trained: Trained, inputs: list[str], auc_margin: float, max_ece: float
) -> dict[str, tuple[bool, dict]]:
    """Each check's outcome and the numbers it saw, for the family the training chose on the
    validation years (the test years choose nothing)."""
    out, fam, valid = {}, trained.model.family, trained.valid_metrics
    auc = {h: (valid[h][fam]["roc_auc"], valid[h]["majority"]["roc_auc"]) for h in HEADS}
    ok = all(x is not None and b is not None and x >= b + auc_margin for x, b in auc.values())
    out["beats_majority_baseline"] = (
        bool(ok),
        {
            "family": fam,
            "margin": auc_margin,
            **{f"{h} ROC-AUC ({fam} / majority)": f"{_fmt(x)} / {_fmt(b)}" for h, (x, b) in auc.items()},
        },
    )
    e = valid["fatal"][fam]["ece"]
    out["calibrated"] = (bool(e <= max_ece), {"family": fam, "ECE": round(float(e), 4), "bound": max_ece})
    try:
        F.assert_allowed(inputs)
        out["no_denylisted_feature"] = (True, {"inputs": len(inputs)})
    except F.LeakageError as exc:
        out["no_denylisted_feature"] = (False, {"refused": str(exc)})
    return out


def _fmt(x):
    return "n/a" if x is None else f"{x:.3f}"
