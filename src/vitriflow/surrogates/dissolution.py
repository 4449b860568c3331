"""Topology-informed dissolution-rate models (Liu et al., thesis Ch. 5; Hamilton NAS data).

Descriptors: pH_acid = max(0, 7 - pH), pH_base = max(0, pH - 7), oxide mole fractions and the
constraint counts of :mod:`vitriflow.topology` (n_c, BS, BB, n_c_Si, n_c_Al, plus f_NBO and
n_SiOSi). A model is a named spec (features, target) fitted as a polynomial of degree p on
min-max normalised inputs (Eq. 5-7) by least squares; p is chosen by grouped 10-fold
cross-validation inside the training set. Accuracy is RRMSE (Eq. 5-1: RMSE divided by the
absolute mean of the measured values) and RMSE, both on log10 rate in mol SiO2 cm^-2 s^-1.

Protocols: (a) random grouped split: whole (glass, initial pH) groups go to the test set, so
repeated measurements never straddle train and test, repeated over many seeds; (b) extrapolation
from one composition family to another (thesis Fig. 5-9), glasses present in both removed from
the test side.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.topology import (
    MODIFIER_OXIDES,
    SUPPORTED_OXIDES,
    TopologyError,
    canonical_oxides,
    count_constraints,
)

log = logging.getLogger("vitriflow.surrogates.dissolution")

RATE_COLUMN = "log10_QSiO2_mol_SiO2_per_cm2_per_s"
RATE_UNIT = "mol SiO2 cm^-2 s^-1"
PH_COLUMNS = {"initial": "pH_initial", "at_time_t": "pH_at_time_t"}
OXIDE_SUFFIX = "_mol_pct"
TOPOLOGY_DESCRIPTORS = ("n_c", "BS", "BB", "n_c_Si", "n_c_Al", "f_NBO", "n_SiOSi", "modifier_frac")
DESCRIPTOR_UNITS = {
    "pH": "pH unit", "pH_acid": "pH unit", "pH_base": "pH unit",
    "n_c": "constraints/atom", "BS": "constraints/atom", "BB": "constraints/atom",
    "n_c_Si": "constraints/atom", "n_c_Al": "constraints/atom",
    "f_NBO": "fraction of O", "n_SiOSi": "Si-O-Si links per Si", "modifier_frac": "mole fraction",
}


class DissolutionDataError(ValueError):
    """Bad dissolution table or configuration (message names the file/key/value)."""


# ----------------------------------------------------------------------------- model specs
ESTIMATORS = {
    "poly": "least-squares polynomial, degree by grouped CV (thesis)",
    "ridge": "ridge polynomial, degree and penalty by grouped CV (vitriflow extension)",
    "gp": "ANOVA Gaussian process, hyper-parameters by marginal likelihood (vitriflow extension)",
    "mixed": "ridge polynomial plus per-glass random effects (intercept, acid slope), penalties by "
             "grouped CV (vitriflow extension)",
    "ensemble": "mean of the member models' predictions, each fitted with its own selection "
                "(vitriflow extension)",
}
@dataclass(frozen=True)
class ModelSpec:
    """A named model: which descriptors go in and whether the target is the rate or its log10."""

    name: str
    features: tuple[str, ...]
    target: str = "log10_rate"  # or "rate"
    description: str = ""
    estimator: str = "poly"  # "poly" (thesis); "ridge", "gp", "mixed", "ensemble" (extensions)
    members: tuple[ModelSpec, ...] = ()  # ensemble only: the member specs

    def __post_init__(self):
        if self.estimator not in ESTIMATORS:
            raise DissolutionDataError(
                f"model {self.name}: estimator {self.estimator!r}, expected one of {list(ESTIMATORS)}"
            )
        if (self.estimator == "ensemble") != bool(self.members):
            raise DissolutionDataError(
                f"model {self.name}: 'members' (a list of model names) goes with estimator 'ensemble' "
                f"and only with it; got estimator {self.estimator!r}, members "
                f"{[m.name for m in self.members]}"
            )
        if self.estimator == "mixed" and self.target != "log10_rate":
            raise DissolutionDataError(f"model {self.name}: estimator 'mixed' needs target log10_rate")
        if self.estimator == "gp" and (self.target != "log10_rate" or len(self.features) < 2
                                       or self.features[0] not in ("pH", "pH_acid")):
            raise DissolutionDataError(
                f"model {self.name}: estimator 'gp' needs target log10_rate and features "
                f"[pH or pH_acid(, pH_base), composition descriptor(s)], got {list(self.features)}"
            )
        if self.target not in ("rate", "log10_rate"):
            raise DissolutionDataError(
                f"model {self.name}: target {self.target!r}, expected 'rate' or 'log10_rate'"
            )
        if not self.features:
            raise DissolutionDataError(f"model {self.name}: empty feature list")


BUILTIN_MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("I", ("pH", "x_Na2O", "x_Al2O3"), "rate", "blind: rate = f(pH, Na2O, Al2O3), Eq. 5-8"),
        ModelSpec("II", ("pH", "x_Na2O", "x_Al2O3"), "log10_rate", "log rate = f(pH, Na2O, Al2O3), Eq. 5-9"),
        ModelSpec("III", ("pH_acid", "pH_base", "x_Na2O", "x_Al2O3"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, Na2O, Al2O3), Eq. 5-10"),
        ModelSpec("IV", ("pH_acid", "pH_base", "n_c", "modifier_frac"), "log10_rate",
                  "topology-informed: log rate = f(pH_acid, pH_base, n_c, Na2O), Eq. 5-11"),
        ModelSpec("IV-a", ("pH_acid", "pH_base", "BS", "BB"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, BS, BB), Eq. 5-14"),
        ModelSpec("IV-b", ("pH_acid", "pH_base", "n_c_Si", "n_c_Al"), "log10_rate",
                  "log rate = f(pH_acid, pH_base, n_c_Si, n_c_Al), Eq. 5-15"),
        ModelSpec("V", ("pH_acid", "pH_base", "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Si-O-Si links per Si (Al avoidance) and NBO fraction"),
        # vitriflow extensions: same descriptors, other estimators
        ModelSpec("III-ridge", ("pH_acid", "pH_base", "x_Na2O", "x_Al2O3"), "log10_rate",
                  "vitriflow extension: Model III descriptors, ridge polynomial", "ridge"),
        ModelSpec("IV-ridge", ("pH_acid", "pH_base", "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: Model IV descriptors, ridge polynomial", "ridge"),
        ModelSpec("V-ridge", ("pH_acid", "pH_base", "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Model V descriptors, ridge polynomial", "ridge"),
        ModelSpec("III-GP", ("pH", "x_Na2O", "x_Al2O3"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and Na2O, Al2O3", "gp"),
        ModelSpec("IV-GP", ("pH", "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and n_c, modifier fraction", "gp"),
        ModelSpec("V-GP", ("pH", "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: ANOVA GP on pH and n_SiOSi, f_NBO", "gp"),
        ModelSpec("IV-mixed", ("pH_acid", "pH_base", "n_c", "modifier_frac"), "log10_rate",
                  "vitriflow extension: Model IV ridge polynomial + per-glass intercept and acid slope",
                  "mixed"),
        ModelSpec("V-mixed", ("pH_acid", "pH_base", "n_SiOSi", "f_NBO"), "log10_rate",
                  "vitriflow extension: Model V ridge polynomial + per-glass intercept and acid slope",
                  "mixed"),
    )
}
# Ensembles declared before any of their scores were computed in the DAG: one descriptor set,
# the three vitriflow estimators, equal weights (no weights fitted, so nothing is tuned on tests).
for _d in ("IV", "V"):
    _m = tuple(BUILTIN_MODELS[f"{_d}-{e}"] for e in ("ridge", "GP", "mixed"))
    BUILTIN_MODELS[f"{_d}-ens"] = ModelSpec(
        f"{_d}-ens", BUILTIN_MODELS[f"{_d}-ridge"].features, "log10_rate",
        f"vitriflow extension: mean of {', '.join(m.name for m in _m)}", "ensemble", _m)


def resolve_models(names: Sequence[str], custom: Mapping[str, Mapping] | None = None) -> list[ModelSpec]:
    """Built-in specs by name plus user specs ``{name: {features: [...], target: ...}}``."""
    custom = dict(custom or {})
    specs = []
    for name in names:
        if name in custom:
            c = custom[name]
            members = tuple(resolve_models(c.get("members", []), {k: v for k, v in custom.items() if k != name}))
            features = tuple(c.get("features") or sorted({f for m in members for f in m.features}))
            specs.append(ModelSpec(name, features, c.get("target", "log10_rate"),
                                   c.get("description", "user-defined"), c.get("estimator", "poly"), members))
        elif name in BUILTIN_MODELS:
            specs.append(BUILTIN_MODELS[name])
        else:
            raise DissolutionDataError(
                f"dissolution.models: unknown model {name!r}; built-in: "
                f"{', '.join(BUILTIN_MODELS)}; or define it under dissolution.custom_models"
            )
    return specs


# ----------------------------------------------------------------------------- data
def oxide_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.endswith(OXIDE_SUFFIX)]


def validate_table(
    df: pd.DataFrame, source: str = "table", *, oxide_sum_tolerance: float = 0.5,
    ph_range: tuple[float, float] = (0.0, 14.0), log10_rate_range: tuple[float, float] = (-20.0, -5.0),
    ph_measures: Sequence[str] = ("initial", "at_time_t"),
) -> pd.DataFrame:
    """Check columns, units, oxide sums and ranges; returns a clean copy. One-line errors.

    ``ph_measures`` (dissolution.ph_measures) says which pH columns must be present and valid:
    pH_initial always (it defines the groups), pH_at_time_t only when ``at_time_t`` is asked for."""
    ox = oxide_columns(df)
    if not ox:
        raise DissolutionDataError(
            f"{source}: no oxide columns; expected columns named <Oxide>{OXIDE_SUFFIX} (mol %), "
            f"e.g. Na2O{OXIDE_SUFFIX}"
        )
    for col in ("pH_initial", RATE_COLUMN):
        if col not in df.columns:
            hint = ""
            if col == RATE_COLUMN:
                near = [c for c in df.columns if "rate" in c.lower() or c.lower().startswith(("log", "q"))]
                hint = f" (found {near}; the rate must be log10 of mol SiO2 cm^-2 s^-1 under this name)" if near else ""
            raise DissolutionDataError(f"{source}: missing column {col!r}{hint}")
    ph_cols = ["pH_initial"] + (["pH_at_time_t"] if "at_time_t" in ph_measures else [])
    if "pH_at_time_t" in ph_cols and "pH_at_time_t" not in df.columns:
        raise DissolutionDataError(
            f"{source}: missing column 'pH_at_time_t', needed by dissolution.ph_measures "
            f"{list(ph_measures)}; add the column or drop at_time_t from dissolution.ph_measures"
        )
    if df.empty:
        raise DissolutionDataError(f"{source}: the table has no rows (only a header)")
    unsupported = [c for c in ox if c[: -len(OXIDE_SUFFIX)] not in SUPPORTED_OXIDES
                   and (pd.to_numeric(df[c], errors="coerce").fillna(0) != 0).any()]
    if unsupported:
        raise DissolutionDataError(
            f"{source}: oxide column(s) {unsupported} not supported by constraint counting; "
            f"supported: {', '.join(SUPPORTED_OXIDES)}"
        )
    out = df.copy()
    for col in [*ox, *ph_cols, RATE_COLUMN]:
        vals = pd.to_numeric(out[col], errors="coerce")
        bad = vals.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raw = df[col].iloc[i]
            what = "empty, expected a number" if pd.isna(raw) or not str(raw).strip() else f"{raw!r} is not a number"
            raise DissolutionDataError(f"{source}: column {col!r} row {i + 2}: {what}")
        out[col] = vals.astype(float)
    for col in ox:
        if ((out[col] < 0) | (out[col] > 100)).any():
            i = int(np.flatnonzero(((out[col] < 0) | (out[col] > 100)).to_numpy())[0])
            raise DissolutionDataError(
                f"{source}: {col} row {i + 2} = {out[col].iloc[i]}, expected mol % in [0, 100]"
            )
    sums = out[ox].sum(axis=1)
    off = (sums - 100).abs() > oxide_sum_tolerance
    if off.any():
        i = int(np.flatnonzero(off.to_numpy())[0])
        raise DissolutionDataError(
            f"{source}: oxides in row {i + 2} sum to {sums.iloc[i]:.4g} mol %, expected 100 "
            f"+/- {oxide_sum_tolerance} (are they wt %? convert to mol %)"
        )
    lo, hi = ph_range
    for col in ph_cols:
        bad = (out[col] < lo) | (out[col] > hi)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DissolutionDataError(
                f"{source}: {col} row {i + 2} = {out[col].iloc[i]}, expected pH in [{lo}, {hi}]"
            )
    r = out[RATE_COLUMN]
    rlo, rhi = log10_rate_range
    bad = (r < rlo) | (r > rhi)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DissolutionDataError(
            f"{source}: {RATE_COLUMN} row {i + 2} = {r.iloc[i]:.4g}, expected log10 of a rate in "
            f"{RATE_UNIT} within [{rlo}, {rhi}] (a linear rate or another unit?)"
        )
    n_dup = int(out.duplicated().sum())
    if n_dup:  # kept: a copy-paste slip and a true repeat look the same, and the user must decide
        log.warning("%s: %d row(s) repeat an earlier row exactly; kept, each counts as a measurement",
                    source, n_dup)
    return out


def row_condition(view: pd.DataFrame, query: str, key: str) -> np.ndarray:
    """Boolean row mask of a pandas query; anything else (``Na2O = 25`` assigns a column, and
    its 2-D result used as a mask silently duplicated rows) is refused naming the key."""
    try:
        keep = view.eval(query, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise DissolutionDataError(f"{key}: cannot evaluate {query!r}: {exc}") from exc
    keep = np.asarray(keep)
    if keep.shape != (len(view),) or keep.dtype != bool:
        raise DissolutionDataError(f"{key}: {query!r} is not a condition on the rows; expected e.g. "
                                   "'Na2O == 25' or 'Al2O3 > 0'")
    return keep


def load_table(path: str | Path, select: str | None = None, **checks) -> pd.DataFrame:
    """Read a CSV (or Parquet) dissolution table, validate it, and apply an optional row query.

    ``select`` is a pandas query over oxide names in mol % and pH columns, e.g. ``"Al2O3 > 0"``.
    """
    path = Path(path)
    if not path.is_file():
        raise DissolutionDataError(f"dissolution.table: {path} does not exist")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DissolutionDataError(f"dissolution.table: {path} is empty") from None
    df = validate_table(df, str(path), **checks)
    if select:
        df = df[row_condition(_oxide_view(df), select, "dissolution.select")].reset_index(drop=True)
        if df.empty:
            raise DissolutionDataError(f"dissolution.select: {select!r} keeps no rows of {path}")
    return df


def _oxide_view(df: pd.DataFrame) -> pd.DataFrame:
    """Columns renamed to bare oxide names (Na2O, ...) so that queries read naturally."""
    return df.rename(columns={c: c[: -len(OXIDE_SUFFIX)] for c in oxide_columns(df)})


def glass_label(row: Mapping[str, float], oxides: Sequence[str]) -> str:
    return "-".join(f"{row[c]:.4g}{c[: -len(OXIDE_SUFFIX)]}" for c in oxides if row[c] > 0)


def describe(df: pd.DataFrame, ph_measure: str = "initial") -> pd.DataFrame:
    """Descriptor frame: glass/group ids, pH features, oxide fractions, constraint counts, target."""
    if ph_measure not in PH_COLUMNS:
        raise DissolutionDataError(f"dissolution.ph_measure: {ph_measure!r}, expected one of {list(PH_COLUMNS)}")
    ph_col = PH_COLUMNS[ph_measure]
    if ph_col not in df:
        raise DissolutionDataError(f"dissolution table: pH measure {ph_measure!r} needs column {ph_col!r}")
    ox = oxide_columns(df)
    comp = df[ox].round(3)
    glass = comp.apply(lambda r: glass_label(r, ox), axis=1)
    topo = {}
    for label, row in zip(glass, comp.to_dict("records"), strict=True):
        if label not in topo:
            try:
                topo[label] = count_constraints({c[: -len(OXIDE_SUFFIX)]: v for c, v in row.items()}, label)
            except TopologyError as exc:
                raise DissolutionDataError(f"dissolution table: {exc}") from exc
    out = pd.DataFrame({"glass": glass.to_numpy()})
    out["group"] = [f"{g}@pH{p:.2f}" for g, p in zip(glass, df["pH_initial"], strict=True)]
    for c in ox:
        out[f"x_{c[: -len(OXIDE_SUFFIX)]}"] = df[c].to_numpy() / 100.0
    for ox_name in ("Na2O", "Al2O3", "SiO2"):  # the thesis' blind models need these columns
        if f"x_{ox_name}" not in out:
            out[f"x_{ox_name}"] = 0.0
    ph = df[ph_col].to_numpy(dtype=float)
    out["pH_initial"] = df["pH_initial"].to_numpy(dtype=float)
    out["pH"] = ph
    out["pH_acid"], out["pH_base"] = ph_branches(ph)
    for name in TOPOLOGY_DESCRIPTORS:
        out[name] = [getattr(topo[g], name) for g in glass]
    out["log10_rate"] = df[RATE_COLUMN].to_numpy(dtype=float)
    out["rate"] = 10.0 ** out["log10_rate"]
    return out


def ph_branches(ph) -> tuple[np.ndarray, np.ndarray]:
    """pH_acid = max(0, 7 - pH), pH_base = max(0, pH - 7): both zero at pH 7 exactly."""
    ph = np.asarray(ph, dtype=float)
    return np.maximum(0.0, 7.0 - ph), np.maximum(0.0, ph - 7.0)


PH_RANGE = (0.0, 14.0)  # aqueous solutions; the Hamilton data span pH 1-12


def composition_descriptors(composition: Mapping[str, float], ph, what: str = "input") -> pd.DataFrame:
    """Descriptor rows for one user composition (oxide -> amount) at one or more pH values
    (pH not range-checked here: ``predict_inputs`` refuses an out-of-range pH row by row)."""
    ph = np.atleast_1d(np.asarray(ph, dtype=float))
    composition = canonical_oxides(composition, what)
    topo = count_constraints(composition, what)
    total = sum(float(v) for v in composition.values())
    row: dict[str, Any] = {f"x_{k}": float(v) / total for k, v in composition.items()}
    for ox_name in ("Na2O", "Al2O3", "SiO2"):
        row.setdefault(f"x_{ox_name}", 0.0)
    row.update({k: getattr(topo, k) for k in TOPOLOGY_DESCRIPTORS})
    out = pd.DataFrame([row] * len(ph))
    out["pH"] = ph
    out["pH_acid"], out["pH_base"] = ph_branches(ph)
    return out


# ----------------------------------------------------------------------------- metrics
def rmse(pred, meas) -> float:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return float(np.sqrt(np.mean((pred - meas) ** 2)))


def rrmse(pred, meas) -> float:
    """Eq. 5-1: RMSE / |mean(measured)| (on log10 rate, relative to ~13 log units here)."""
    meas = np.asarray(meas, float)
    return rmse(pred, meas) / abs(float(np.mean(meas)))


# ----------------------------------------------------------------------------- estimator
def _one_thread():
    """BLAS on one thread: these least-squares problems are tiny, and a multi-threaded BLAS on a
    busy machine made each 200x56 solve take 0.2 s instead of 0.1 ms."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _powers(n_features: int, degree: int) -> np.ndarray:
    from sklearn.preprocessing import PolynomialFeatures

    return PolynomialFeatures(degree).fit(np.zeros((1, n_features))).powers_


@dataclass
class PolynomialRateModel:
    """Least-squares polynomial of given degree on min-max normalised features (Eq. 5-7).

    ``fit``/``predict`` take descriptor frames; ``predict`` returns log10 rate whatever the
    target (a rate-target model's non-positive predictions are floored, see ``rate_floor``).
    """

    spec: ModelSpec
    degree: int = 1
    x_min: np.ndarray | None = None
    x_max: np.ndarray | None = None
    coef: np.ndarray | None = None
    powers: np.ndarray | None = None
    y_scale: float = 1.0
    rate_floor: float | None = None
    alpha: float = 0.0  # ridge penalty per sample on the normalised design; intercept unpenalised
    extra: dict = field(default_factory=dict)

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.spec.features if f not in frame]
        if missing:
            raise DissolutionDataError(f"model {self.spec.name}: descriptor(s) {missing} unknown")
        return frame[list(self.spec.features)].to_numpy(dtype=float)

    def _design(self, X: np.ndarray) -> np.ndarray:
        span = np.where(self.x_max > self.x_min, self.x_max - self.x_min, 1.0)
        Z = (X - self.x_min) / span
        return np.prod(Z[:, None, :] ** self.powers[None, :, :], axis=2)

    def fit_arrays(self, X: np.ndarray, y: np.ndarray) -> PolynomialRateModel:
        """Fit on a feature matrix (columns in ``spec.features`` order) and target values."""
        self.x_min, self.x_max = X.min(axis=0), X.max(axis=0)
        self.powers = _powers(X.shape[1], self.degree)
        if self.spec.target == "rate":  # keep the least squares well scaled (rates ~1e-13)
            self.y_scale = float(np.mean(np.abs(y)))
            self.rate_floor = float(y.min())
        A = self._design(X)
        if self.alpha > 0:
            self.coef = _ridge_solve(A, y / self.y_scale, [self.alpha])[0]
        else:
            self.coef, *_ = np.linalg.lstsq(A, y / self.y_scale, rcond=None)
        return self

    def fit(self, frame: pd.DataFrame) -> PolynomialRateModel:
        with _one_thread():
            return self.fit_arrays(self._features(frame), frame[self.spec.target].to_numpy(dtype=float))

    def predict_arrays(self, X: np.ndarray) -> np.ndarray:
        """Prediction in the target space (rate or log10 rate) from a feature matrix."""
        return self._design(X) @ self.coef * self.y_scale

    def predict_target(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_arrays(self._features(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """log10 rate (mol SiO2 cm^-2 s^-1)."""
        y = self.predict_target(frame)
        if self.spec.target == "rate":
            return np.log10(np.maximum(y, self.rate_floor))
        return y

    def term_names(self) -> list[str]:
        names = []
        for p in self.powers:
            parts = [f"{f}'" + (f"^{k}" if k > 1 else "") for f, k in zip(self.spec.features, p, strict=True) if k]
            names.append("*".join(parts) or "1")
        return names

    def coefficients(self) -> pd.DataFrame:
        """Coefficients on normalised features; for degree 1 also per physical unit."""
        unit_y = "log10(" + RATE_UNIT + ")" if self.spec.target == "log10_rate" else RATE_UNIT
        rows = []
        for name, c, p in zip(self.term_names(), self.coef * self.y_scale, self.powers, strict=True):
            row = {"model": self.spec.name, "term": name, "coef_normalised": float(c),
                   "unit_normalised": unit_y, "coef_physical": np.nan, "unit_physical": ""}
            if self.degree == 1 and p.sum() == 1:
                j = int(np.argmax(p))
                f = self.spec.features[j]
                span = self.x_max[j] - self.x_min[j]
                row["coef_physical"] = float(c / span) if span > 0 else np.nan
                fu = DESCRIPTOR_UNITS.get(f, "mole fraction" if f.startswith("x_") else "unit")
                row["unit_physical"] = f"{unit_y} per {fu} of {f}"
            rows.append(row)
        if self.degree == 1:  # intercept in physical units: value at all descriptors = 0
            span = np.where(self.x_max > self.x_min, self.x_max - self.x_min, 1.0)
            c = self.coef * self.y_scale
            rows[0]["coef_physical"] = float(c[0] - np.sum(c[1:] * self.x_min / span))
            rows[0]["unit_physical"] = f"{unit_y} at all descriptors = 0"
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": {"name": self.spec.name, "features": list(self.spec.features),
                     "target": self.spec.target, "description": self.spec.description},
            "estimator": self.spec.estimator, "degree": self.degree, "x_min": self.x_min.tolist(), "x_max": self.x_max.tolist(),
            "powers": self.powers.tolist(), "coef": self.coef.tolist(), "y_scale": self.y_scale,
            "rate_floor": self.rate_floor, "alpha": self.alpha, **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolynomialRateModel:
        s = d["spec"]
        m = cls(ModelSpec(s["name"], tuple(s["features"]), s["target"], s.get("description", ""),
                          d.get("estimator", "poly")), int(d["degree"]))
        m.x_min, m.x_max = np.asarray(d["x_min"], float), np.asarray(d["x_max"], float)
        m.powers, m.coef = np.asarray(d["powers"], int), np.asarray(d["coef"], float)
        m.y_scale, m.rate_floor = float(d["y_scale"]), d.get("rate_floor")
        m.alpha = float(d.get("alpha", 0.0))
        m.extra = {k: v for k, v in d.items() if k not in
                   {"spec", "estimator", "degree", "x_min", "x_max", "powers", "coef", "y_scale", "rate_floor",
                    "alpha"}}
        return m


def _composition_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Oxide mole fractions of each row on ``columns`` (absent columns = 0); a row with another
    oxide present gets NaN so that it matches no known glass."""
    M = np.column_stack([frame[c].to_numpy(dtype=float) if c in frame else np.zeros(len(frame))
                         for c in columns])
    other = [c for c in frame if c.startswith("x_") and c not in columns]
    if other:
        M[(frame[other].to_numpy(dtype=float) > 0).any(axis=1)] = np.nan
    return M


@dataclass
class MixedRateModel(PolynomialRateModel):
    """Ridge polynomial (population part) plus per-glass random effects: an intercept and, when
    ``pH_acid`` is a feature, an acid-branch slope, shrunk by their own penalty ``alpha_glass``.

    Why: the group-mean table is additive plus one glass-dependent acid-branch sensitivity (see
    docs/dissolution.md); eight glasses are too few for a smooth composition function to fix
    each glass's level and acid slope, while its own measurements at other pH values do. Glasses
    are recognised by composition (mole fractions within 1e-6); an unseen composition gets the
    population prediction (random effects zero), as in any mixed model."""

    alpha_glass: float = 0.0
    x_columns: list[str] = field(default_factory=list)
    glass_x: np.ndarray | None = None  # (n_glasses, n_x_columns)
    glass_coef: np.ndarray | None = None  # (n_glasses, n_effect_terms)

    @property
    def effect_terms(self) -> tuple[str, ...]:
        return ("1", "pH_acid") if "pH_acid" in self.spec.features else ("1",)

    def _glass_index(self, frame: pd.DataFrame) -> np.ndarray:
        """Index of each row's glass among the training glasses, -1 when unseen."""
        M = _composition_matrix(frame, self.x_columns)
        d = np.abs(M[:, None, :] - self.glass_x[None, :, :]).max(axis=2)
        hit = d < 1e-6
        return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)

    def _effects_design(self, frame: pd.DataFrame) -> np.ndarray:
        idx = self._glass_index(frame)
        terms = [np.ones(len(frame)) if t == "1" else frame[t].to_numpy(dtype=float) for t in self.effect_terms]
        G = np.zeros((len(frame), len(self.glass_x) * len(terms)))
        rows = np.flatnonzero(idx >= 0)
        for k, t in enumerate(terms):
            G[rows, idx[rows] * len(terms) + k] = t[rows]
        return G

    def setup(self, frame: pd.DataFrame) -> MixedRateModel:
        """Normalisation, polynomial powers and the glass list from the training rows."""
        X = self._features(frame)
        self.x_min, self.x_max = X.min(axis=0), X.max(axis=0)
        self.powers = _powers(X.shape[1], self.degree)
        self.x_columns = sorted(c for c in frame if c.startswith("x_"))
        self.glass_x = np.unique(frame[self.x_columns].to_numpy(dtype=float).round(9), axis=0)
        return self

    def designs(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self._design(self._features(frame)), self._effects_design(frame)

    def fit(self, frame: pd.DataFrame) -> MixedRateModel:
        with _one_thread():
            self.setup(frame)
            A, G = self.designs(frame)
            pen = _mixed_penalty(A.shape[1], G.shape[1], self.alpha, self.alpha_glass)
            w = _penalised_solves(np.hstack([A, G]), frame["log10_rate"].to_numpy(dtype=float), [pen])[0]
        self.coef, self.glass_coef = w[: A.shape[1]], w[A.shape[1]:].reshape(len(self.glass_x), -1)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        A, G = self.designs(frame)
        return A @ self.coef + G @ self.glass_coef.ravel()

    predict_target = predict

    def coefficients(self) -> pd.DataFrame:
        """Population terms (normalised features) and each glass's random effects in physical
        units: log10 rate, and log10 rate per pH unit of pH_acid."""
        out = super().coefficients()
        rows = []
        names = [", ".join(f"{c[2:]} {100 * v:.4g}" for c, v in zip(self.x_columns, g, strict=True) if v > 0)
                 for g in self.glass_x]
        for name, coefs in zip(names, self.glass_coef, strict=True):
            for t, c in zip(self.effect_terms, coefs, strict=True):
                rows.append({"model": self.spec.name, "term": f"glass[{name}]" + ("" if t == "1" else f"*{t}"),
                             "coef_normalised": np.nan, "unit_normalised": "",
                             "coef_physical": float(c),
                             "unit_physical": "log10 rate" + ("" if t == "1" else " per pH unit")})
        return pd.concat([out, pd.DataFrame(rows)], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "alpha_glass": self.alpha_glass, "x_columns": self.x_columns,
                "glass_x": self.glass_x.tolist(), "glass_coef": self.glass_coef.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MixedRateModel:
        m = super().from_dict({k: v for k, v in d.items()
                               if k not in ("alpha_glass", "x_columns", "glass_x", "glass_coef")})
        m.alpha_glass, m.x_columns = float(d["alpha_glass"]), list(d["x_columns"])
        m.glass_x, m.glass_coef = np.asarray(d["glass_x"], float), np.asarray(d["glass_coef"], float)
        return m


DEFAULT_GLASS_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _mixed_penalty(n_poly: int, n_effects: int, alpha: float, alpha_glass: float) -> np.ndarray:
    """Diagonal penalty of [A G]: intercept free, polynomial terms alpha, random effects
    alpha_glass (plus a 1e-12 jitter: glass intercepts sum to the intercept column)."""
    return np.r_[0.0, np.full(n_poly - 1, alpha), np.full(n_effects, alpha_glass)] + 1e-12


@dataclass
class EnsembleRateModel:
    """Equal-weight mean of fitted member models (no weights are fitted)."""

    spec: ModelSpec
    members: list = field(default_factory=list)
    degree: int = -1  # shown as "ens" in the tables

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.mean([m.predict(frame) for m in self.members], axis=0)

    predict_target = predict

    def coefficients(self) -> pd.DataFrame:
        parts = []
        for m in self.members:
            c = m.coefficients()
            c["model"] = f"{self.spec.name}/{m.spec.name}"
            parts.append(c)
        return pd.concat(parts, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": {"name": self.spec.name, "features": list(self.spec.features),
                         "target": self.spec.target, "description": self.spec.description},
                "estimator": "ensemble", "degree": -1, "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnsembleRateModel:
        members = [model_from_card(c) for c in d["members"]]
        s = d["spec"]
        spec = ModelSpec(s["name"], tuple(s["features"]), s["target"], s.get("description", ""), "ensemble",
                         tuple(m.spec for m in members))
        return cls(spec, members)


def _target_rrmse(model: PolynomialRateModel, frame: pd.DataFrame) -> float:
    return rrmse(model.predict_target(frame), frame[model.spec.target])


def grouped_folds(groups: Sequence[str], n_folds: int) -> list[np.ndarray]:
    """Validation masks of grouped K-fold (sklearn GroupKFold; deterministic)."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n = min(n_folds, len(np.unique(groups)))
    if n < 2:
        raise DissolutionDataError(f"cross-validation needs >= 2 (glass, pH) groups, got {n}")
    out = []
    for _, va in GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups):
        m = np.zeros(len(groups), bool)
        m[va] = True
        out.append(m)
    return out


DEFAULT_RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-8, 0, 9))


def _penalised_solves(M: np.ndarray, y: np.ndarray, penalties: Sequence[np.ndarray]) -> list[np.ndarray]:
    """min |M w - y|^2 / n + sum_k p_k w_k^2 for each diagonal penalty p (one Gram matrix)."""
    n = len(y)
    G, b = M.T @ M / n, M.T @ y / n
    return [np.linalg.solve(G + np.diag(p), b) for p in penalties]


def _ridge_solve(A: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Ridge coefficients for several penalties at once (the intercept column, first, is free)."""
    return _penalised_solves(A, y, [np.r_[0.0, np.full(A.shape[1] - 1, a)] for a in alphas])


def select_degree(frame: pd.DataFrame, spec: ModelSpec, max_degree: int = 5,
                  n_folds: int = 10, alphas: Sequence[float] | None = None) -> tuple[int, pd.DataFrame]:
    """Degree (and, for ridge/mixed specs, penalties) with the lowest mean validation RRMSE (in the
    model's target space) under grouped K-fold inside ``frame`` only; returns the degree with the
    train/validation curve (Figs. 5-1, 5-4, 5-6). For ridge/mixed the curve has the best
    penalties per degree, and ``curve.attrs`` holds the chosen ``alpha`` (and ``alpha_glass``)."""
    folds = grouped_folds(frame["group"].to_numpy(), n_folds)
    X = frame[list(spec.features)].to_numpy(dtype=float)
    y = frame[spec.target].to_numpy(dtype=float)
    alphas = list(alphas or DEFAULT_RIDGE_ALPHAS)
    if spec.estimator == "ridge":
        grid = [(a, 0.0) for a in alphas]
    elif spec.estimator == "mixed":
        grid = [(a, g) for a in alphas for g in DEFAULT_GLASS_ALPHAS]
    else:
        grid = [(0.0, 0.0)]
    rows = []
    with _one_thread():
        for deg in range(1, max_degree + 1):
            tr_e, va_e = np.zeros((len(folds), len(grid))), np.zeros((len(folds), len(grid)))
            for i, va in enumerate(folds):
                if spec.estimator == "mixed":
                    m = MixedRateModel(spec, deg).setup(frame[~va])
                    (A_tr, G_tr), (A_va, G_va) = m.designs(frame[~va]), m.designs(frame[va])
                    M_tr, M_va = np.hstack([A_tr, G_tr]), np.hstack([A_va, G_va])
                    pens = [_mixed_penalty(A_tr.shape[1], G_tr.shape[1], a, g) for a, g in grid]
                    for j, w in enumerate(_penalised_solves(M_tr, y[~va], pens)):
                        tr_e[i, j], va_e[i, j] = rrmse(M_tr @ w, y[~va]), rrmse(M_va @ w, y[va])
                elif spec.estimator == "ridge":
                    m = PolynomialRateModel(spec, deg)
                    m.x_min, m.x_max = X[~va].min(axis=0), X[~va].max(axis=0)
                    m.powers = _powers(X.shape[1], deg)
                    A_tr, A_va = m._design(X[~va]), m._design(X[va])
                    for j, w in enumerate(_ridge_solve(A_tr, y[~va], [a for a, _ in grid])):
                        tr_e[i, j], va_e[i, j] = rrmse(A_tr @ w, y[~va]), rrmse(A_va @ w, y[va])
                else:
                    m = PolynomialRateModel(spec, deg)
                    m.fit_arrays(X[~va], y[~va])
                    tr_e[i, 0] = rrmse(m.predict_arrays(X[~va]), y[~va])
                    va_e[i, 0] = rrmse(m.predict_arrays(X[va]), y[va])
            j = int(np.argmin(va_e.mean(axis=0)))
            rows.append({"model": spec.name, "degree": deg, "alpha": grid[j][0], "alpha_glass": grid[j][1],
                         "train_rrmse": float(tr_e[:, j].mean()), "validation_rrmse": float(va_e[:, j].mean())})
    curve = pd.DataFrame(rows)
    i = curve["validation_rrmse"].idxmin()
    curve.attrs["alpha"] = float(curve.loc[i, "alpha"])
    curve.attrs["alpha_glass"] = float(curve.loc[i, "alpha_glass"])
    return int(curve.loc[i, "degree"]), curve


def _fitted(spec: ModelSpec, degree: int, curve: pd.DataFrame, frame: pd.DataFrame, row=None):
    """The model of ``spec`` at ``degree`` with the curve's penalties (best overall or ``row``'s)."""
    src = curve.attrs if row is None else row
    if spec.estimator == "mixed":
        return MixedRateModel(spec, degree, alpha=float(src["alpha"]), alpha_glass=float(src["alpha_glass"])).fit(frame)
    return PolynomialRateModel(spec, degree, alpha=float(src.get("alpha", 0.0))).fit(frame)


def fit_with_cv(frame: pd.DataFrame, spec: ModelSpec, max_degree: int = 5, cv_folds: int = 10,
                alphas: Sequence[float] | None = None, cache: dict | None = None):
    """Fit ``spec`` on ``frame`` with its hyper-parameters chosen on ``frame`` alone. ``cache``
    (one dict per training frame) lets an ensemble reuse members fitted on the same frame."""
    key = ("cv", spec.name)
    if cache is not None and key in cache:
        return cache[key]
    if spec.estimator == "ensemble":
        fits = [fit_with_cv(frame, m, max_degree, cv_folds, alphas, cache) for m in spec.members]
        curve = pd.concat([c.assign(member=m.spec.name, model=spec.name) for m, c in fits], ignore_index=True)
        out = EnsembleRateModel(spec, [m for m, _ in fits]), curve
    elif spec.estimator == "gp":
        model = AnovaGPRateModel(spec).fit(frame)
        curve = pd.DataFrame([{"model": spec.name, "degree": 0, "alpha": np.nan,
                               "train_rrmse": rrmse(model.predict(frame), frame["log10_rate"]),
                               "validation_rrmse": np.nan}])
        out = model, curve
    else:
        deg, curve = select_degree(frame, spec, max_degree, cv_folds, alphas)
        out = _fitted(spec, deg, curve, frame), curve
    if cache is not None:
        cache[key] = out
    return out


def fit_fixed_degree(frame: pd.DataFrame, spec: ModelSpec, degree: int, cv_folds: int = 10,
                     alphas: Sequence[float] | None = None, cache: dict | None = None):
    """Fixed degree; ridge/mixed specs still pick their penalties by grouped CV inside ``frame``;
    a GP has no degree and is fitted as usual; an ensemble fixes its members' degrees."""
    key = (degree, spec.name)
    if cache is not None and key in cache:
        return cache[key]
    if spec.estimator == "ensemble":
        model = EnsembleRateModel(spec, [fit_fixed_degree(frame, m, degree, cv_folds, alphas, cache)
                                         for m in spec.members])
    else:
        model = _fit_fixed_degree(frame, spec, degree, cv_folds, alphas)
    if cache is not None:
        cache[key] = model
    return model


def _fit_fixed_degree(frame, spec, degree, cv_folds, alphas):
    if spec.estimator == "gp":
        return fit_with_cv(frame, spec)[0]
    if spec.estimator in ("ridge", "mixed"):
        _, curve = select_degree(frame, spec, degree, cv_folds, alphas)
        return _fitted(spec, degree, curve, frame, curve[curve["degree"] == degree].iloc[0])
    return PolynomialRateModel(spec, degree).fit(frame)


# ----------------------------------------------------------------------------- Gaussian process
def _sqdist(A: np.ndarray, B: np.ndarray, ls: np.ndarray) -> np.ndarray:
    A, B = A / ls, B / ls
    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)


@dataclass
class AnovaGPRateModel:
    """Gaussian process on (pH part, composition part) with an ANOVA kernel (vitriflow extension):

    k = s1 RBF_pH + s2 RBF_comp + s3 RBF_pH * RBF_comp + noise,

    i.e. log rate = f(pH) + g(composition) + h(pH, composition) + noise. That mirrors the data:
    the (glass x pH) table of group means is additive plus one interaction (acid-branch
    sensitivity) to 0.19 log units. ARD length scales on min-max normalised inputs, output
    standardised, all hyper-parameters by maximum marginal likelihood on the training rows
    only (two deterministic starts), so no validation or test data is involved. The pH part
    is the leading ``pH`` or ``pH_acid, pH_base`` features."""

    spec: ModelSpec
    degree: int = 0  # no polynomial degree; kept for the tables
    theta: np.ndarray | None = None
    x_min: np.ndarray | None = None
    x_max: np.ndarray | None = None
    y_mean: float = 0.0
    y_sd: float = 1.0
    Z: np.ndarray | None = None
    weights: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_ph(self) -> int:
        return 2 if self.spec.features[:2] == ("pH_acid", "pH_base") else 1

    def _kernel(self, th: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        p = np.exp(th)
        i, c = self.n_ph, len(self.spec.features) - self.n_ph
        ls = np.split(p[3:], np.cumsum([i, c, i]))
        Ap, Ac, Bp, Bc = A[:, :i], A[:, i:], B[:, :i], B[:, i:]
        return (p[0] * np.exp(-0.5 * _sqdist(Ap, Bp, ls[0])) + p[1] * np.exp(-0.5 * _sqdist(Ac, Bc, ls[1]))
                + p[2] * np.exp(-0.5 * _sqdist(Ap, Bp, ls[2]) - 0.5 * _sqdist(Ac, Bc, ls[3])))

    def _nlml(self, th: np.ndarray, Z: np.ndarray, y: np.ndarray) -> float:
        from scipy.linalg import cho_factor, cho_solve

        K = self._kernel(th[:-1], Z, Z) + (np.exp(th[-1]) + 1e-8) * np.eye(len(y))
        try:
            c = cho_factor(K, lower=True)
        except np.linalg.LinAlgError:
            return 1e10
        return float(0.5 * y @ cho_solve(c, y) + np.log(np.diag(c[0])).sum())

    def _normalise(self, X: np.ndarray) -> np.ndarray:
        span = np.where(self.x_max > self.x_min, self.x_max - self.x_min, 1.0)
        return (X - self.x_min) / span

    def fit(self, frame: pd.DataFrame) -> AnovaGPRateModel:
        from scipy.linalg import cho_factor, cho_solve
        from scipy.optimize import minimize

        X = frame[list(self.spec.features)].to_numpy(dtype=float)
        y = frame["log10_rate"].to_numpy(dtype=float)
        self.x_min, self.x_max = X.min(axis=0), X.max(axis=0)
        Z = self._normalise(X)
        self.y_mean, self.y_sd = float(y.mean()), float(y.std()) or 1.0
        yn = (y - self.y_mean) / self.y_sd
        n_ls = 2 * len(self.spec.features)
        noise0 = np.log((0.15 / self.y_sd) ** 2)  # start at the repeat-scatter floor
        bounds = [(np.log(1e-3), np.log(10.0))] * 3 + [(np.log(0.03), np.log(10.0))] * n_ls \
            + [(np.log(1e-4), np.log(0.5))]
        best = None
        with _one_thread():
            for start in (np.log(0.3), 0.0):
                th0 = np.r_[np.log([0.5, 0.5, 0.5]), np.full(n_ls, start), noise0]
                r = minimize(self._nlml, th0, args=(Z, yn), method="L-BFGS-B", bounds=bounds)
                if best is None or r.fun < best.fun:
                    best = r
            self.theta, self.Z = best.x, Z
            K = self._kernel(self.theta[:-1], Z, Z) + (np.exp(self.theta[-1]) + 1e-8) * np.eye(len(y))
            self.weights = cho_solve(cho_factor(K, lower=True), yn)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """log10 rate (mol SiO2 cm^-2 s^-1), the GP posterior mean."""
        missing = [f for f in self.spec.features if f not in frame]
        if missing:
            raise DissolutionDataError(f"model {self.spec.name}: descriptor(s) {missing} unknown")
        Z = self._normalise(frame[list(self.spec.features)].to_numpy(dtype=float))
        return self.y_mean + self.y_sd * self._kernel(self.theta[:-1], Z, self.Z) @ self.weights

    predict_target = predict

    def hyperparameters(self) -> dict[str, float]:
        p = np.exp(self.theta)
        f = self.spec.features
        i = self.n_ph
        names = ["var_pH", "var_comp", "var_pH_x_comp"] + [f"ls_{x}" for x in f[:i]] + \
            [f"ls_{x}" for x in f[i:]] + [f"ls_{x}_in_product" for x in f[:i]] + \
            [f"ls_{x}_in_product" for x in f[i:]] + ["noise_var"]
        out = dict(zip(names, p.tolist(), strict=True))
        out["noise_sd_log10"] = float(np.sqrt(p[-1]) * self.y_sd)
        return out

    def coefficients(self) -> pd.DataFrame:
        """Kernel hyper-parameters (a GP has no coefficients): variances in units of the
        standardised log10 rate, length scales in units of the min-max normalised input."""
        return pd.DataFrame([{"model": self.spec.name, "term": k, "coef_normalised": v,
                              "unit_normalised": "GP hyper-parameter", "coef_physical": np.nan,
                              "unit_physical": ("log10 rate" if k == "noise_sd_log10" else "")}
                             for k, v in self.hyperparameters().items()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": {"name": self.spec.name, "features": list(self.spec.features),
                     "target": self.spec.target, "description": self.spec.description},
            "estimator": "gp", "degree": 0, "theta": self.theta.tolist(), "x_min": self.x_min.tolist(),
            "x_max": self.x_max.tolist(), "y_mean": self.y_mean, "y_sd": self.y_sd,
            "Z": self.Z.tolist(), "weights": self.weights.tolist(),
            "hyperparameters": self.hyperparameters(), **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnovaGPRateModel:
        s = d["spec"]
        m = cls(ModelSpec(s["name"], tuple(s["features"]), s["target"], s.get("description", ""), "gp"))
        m.theta, m.x_min, m.x_max = (np.asarray(d[k], float) for k in ("theta", "x_min", "x_max"))
        m.y_mean, m.y_sd = float(d["y_mean"]), float(d["y_sd"])
        m.Z, m.weights = np.asarray(d["Z"], float), np.asarray(d["weights"], float)
        return m


def model_from_card(card: Mapping[str, Any]):
    """The fitted model of a card (polynomial/ridge, GP, mixed or ensemble)."""
    cls = {"gp": AnovaGPRateModel, "mixed": MixedRateModel, "ensemble": EnsembleRateModel}
    return cls.get(card.get("estimator"), PolynomialRateModel).from_dict(card)


# ----------------------------------------------------------------------------- protocols
def _split_groups(groups: Sequence[str], test_fraction: float) -> tuple[np.ndarray, int]:
    """The sorted distinct groups and how many of them a split holds out."""
    if not 0 < test_fraction < 1:
        raise DissolutionDataError(f"dissolution.test_fraction: {test_fraction}, expected in (0, 1)")
    uniq = np.unique(np.asarray(groups))  # sorted: independent of row order
    n_test = max(1, int(round(test_fraction * len(uniq))))
    if len(uniq) - n_test < 2:
        raise DissolutionDataError(
            f"grouped split: {len(uniq)} (glass, initial pH) group(s) leave {len(uniq) - n_test} for "
            f"training with dissolution.test_fraction {test_fraction}; the inner cross-validation needs "
            ">= 2 (keep more rows with dissolution.select or lower dissolution.test_fraction)")
    return uniq, n_test


def grouped_split(groups: Sequence[str], test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask holding out round(test_fraction * n_groups) whole groups."""
    uniq, n_test = _split_groups(groups, test_fraction)
    test = np.random.default_rng(seed).choice(uniq, n_test, replace=False)
    return np.isin(np.asarray(groups), test)


def distinct_grouped_splits(groups: Sequence[str], test_fraction: float, seed: int,
                            n_splits: int) -> list[tuple[int, np.ndarray]]:
    """``(seed, test mask)`` of ``n_splits`` splits with distinct test sets: seeds seed, seed + 1, ...
    are tried in turn and a seed whose held-out groups repeat an earlier split's is skipped. With
    few groups there are fewer distinct test sets than ``n_splits``: all of them are used and a
    warning says so (repeats would only shrink the spread over splits)."""
    uniq, n_test = _split_groups(groups, test_fraction)
    n_distinct = math.comb(len(uniq), n_test)
    if n_distinct < n_splits:
        log.warning("dissolution.n_splits %d: %d groups holding out %d have only %d distinct test sets; "
                    "using %d splits", n_splits, len(uniq), n_test, n_distinct, n_distinct)
        n_splits = n_distinct
    groups = np.asarray(groups)
    splits, seen, k = [], set(), seed
    while len(splits) < n_splits:
        te = grouped_split(groups, test_fraction, k)
        held_out = tuple(np.unique(groups[te]))
        if held_out not in seen:
            seen.add(held_out)
            splits.append((k, te))
        k += 1
    return splits


def _score(model: PolynomialRateModel, frame: pd.DataFrame) -> dict[str, float]:
    pred = model.predict(frame)
    meas = frame["log10_rate"].to_numpy()
    out = {"rrmse": rrmse(pred, meas), "rmse": rmse(pred, meas),
           "rrmse_target": _target_rrmse(model, frame)}
    if model.spec.target == "rate":
        out["n_floored"] = int(np.sum(model.predict_target(frame) <= model.rate_floor))
    return out


def evaluate_grouped(frame: pd.DataFrame, specs: Sequence[ModelSpec], *, n_splits: int = 20,
                     seed: int = 0, test_fraction: float = 0.3, max_degree: int = 5,
                     cv_folds: int = 10, ph_measure: str = "initial",
                     alphas: Sequence[float] | None = None) -> pd.DataFrame:
    """Protocol (a): one row per (model, split) with the chosen degree and train/test metrics;
    the splits' test sets are distinct (``distinct_grouped_splits``)."""
    rows = []
    for split_seed, te in distinct_grouped_splits(frame["group"].to_numpy(), test_fraction, seed, n_splits):
        train, test = frame[~te], frame[te]
        assert not set(train["group"]) & set(test["group"])
        cache: dict = {}  # ensembles reuse members fitted on this training set
        for spec in specs:
            model, _ = fit_with_cv(train, spec, max_degree, cv_folds, alphas, cache)  # sees train only
            tr, ts = _score(model, train), _score(model, test)
            rows.append({"protocol": "grouped_random", "ph_measure": ph_measure, "model": spec.name,
                     "degree_rule": "cv",
                         "split_seed": split_seed, "degree": model.degree,
                         "alpha": getattr(model, "alpha", np.nan),
                         "n_train": len(train), "n_test": len(test),
                         "test_point_fraction": len(test) / len(frame),
                         **{f"train_{a}": b for a, b in tr.items()},
                         **{f"test_{a}": b for a, b in ts.items()}})
    return pd.DataFrame(rows)


def family_masks(frame: pd.DataFrame, train_query: str, test_query: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the train and test families (pandas queries over oxide mol %); glasses in both
    families are kept in training and removed from the test side, so the test is truly unseen."""
    view = pd.DataFrame({c[2:]: frame[c] * 100 for c in frame if c.startswith("x_")})
    tr, te = (row_condition(view, q, f"dissolution.extrapolation.{key}")
              for key, q in (("train", train_query), ("test", test_query)))
    te = te & ~np.isin(frame["glass"], frame.loc[tr, "glass"].unique())
    if not tr.any() or not te.any():
        raise DissolutionDataError(
            f"dissolution.extrapolation: train {train_query!r} selects {int(tr.sum())} rows, "
            f"test {test_query!r} selects {int(te.sum())} unseen rows; both must be non-empty"
        )
    n_groups = frame.loc[tr, "group"].nunique()
    if n_groups < 2:  # the degree is chosen by grouped CV inside the training family
        raise DissolutionDataError(
            f"dissolution.extrapolation.train: {train_query!r} selects {n_groups} (glass, pH) group; "
            "expected at least 2 for the cross-validation inside the training family")
    return tr, te


def evaluate_extrapolation(frame: pd.DataFrame, specs: Sequence[ModelSpec], *, train_query: str,
                           test_query: str, max_degree: int = 5, cv_folds: int = 10,
                           ph_measure: str = "initial", degree: int | str = "cv",
                           alphas: Sequence[float] | None = None):
    """Protocol (b): train on one family, test on another. Returns (scores, predictions).

    ``degree`` is "cv" (grouped K-fold inside the training family) or a fixed integer."""
    tr, te = family_masks(frame, train_query, test_query)
    rows, preds, cache = [], [], {}
    for spec in specs:
        if degree == "cv":
            model, _ = fit_with_cv(frame[tr], spec, max_degree, cv_folds, alphas, cache)
        else:
            model = fit_fixed_degree(frame[tr], spec, int(degree), cv_folds, alphas, cache)
        s_tr, s_te = _score(model, frame[tr]), _score(model, frame[te])
        rows.append({"protocol": "extrapolation", "ph_measure": ph_measure, "model": spec.name,
                     "degree_rule": str(degree),
                     "split_seed": -1, "degree": model.degree, "n_train": int(tr.sum()),
                     "n_test": int(te.sum()), "test_point_fraction": float(te.mean()),
                     **{f"train_{a}": b for a, b in s_tr.items()},
                     **{f"test_{a}": b for a, b in s_te.items()}})
        for mask, role in ((tr, "train"), (te, "test")):
            p = frame.loc[mask, ["glass", "group", "pH", "n_c", "log10_rate"]].copy()
            p["predicted"] = model.predict(frame[mask])
            p["role"], p["model"], p["ph_measure"] = role, spec.name, ph_measure
            p["degree_rule"], p["degree"] = str(degree), model.degree
            preds.append(p)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


def _degree_code(d: int) -> str:
    return {0: "GP", -1: "ens"}.get(int(d), str(int(d)))


def summary_table(scores: pd.DataFrame, target_rrmse_pct: float = 3.76) -> pd.DataFrame:
    """One row per (model, pH measure): grouped-random mean +/- sd over splits, and A->B per
    degree rule ("cv" or a fixed degree)."""
    g = scores[scores.protocol == "grouped_random"].groupby(["model", "ph_measure"], sort=False)
    a = g.agg(grouped_rrmse_pct=("test_rrmse", lambda s: 100 * s.mean()),
              grouped_rrmse_sd_pct=("test_rrmse", lambda s: 100 * s.std(ddof=1) if len(s) > 1 else np.nan),
              grouped_rmse=("test_rmse", "mean"),
              grouped_splits=("test_rrmse", "size"),
              splits_at_or_below_target=("test_rrmse", lambda s: int((100 * s <= target_rrmse_pct).sum())),
              grouped_degrees=("degree", lambda s: ",".join(_degree_code(d) + f"x{n}"
                                                            for d, n in sorted(s.value_counts().items()))))
    e = scores[scores.protocol == "extrapolation"]
    for rule, sub in e.groupby("degree_rule", sort=False):
        sub = sub.set_index(["model", "ph_measure"])
        tag = "AB_cv" if rule == "cv" else f"AB_p{rule}"
        a = a.join(pd.DataFrame({f"{tag}_rrmse_pct": 100 * sub["test_rrmse"], f"{tag}_rmse": sub["test_rmse"],
                                 f"{tag}_degree": sub["degree"]}), how="left")
    return a.reset_index()


def headline_card(summary: pd.DataFrame, target_rrmse_pct: float = 3.76) -> dict[str, str]:
    """Report card: the best grouped-random model against the thesis' RRMSE."""
    from vitriflow.report import headline

    best = summary.loc[summary["grouped_rrmse_pct"].idxmin()]
    return headline("Dissolution rate, held-out glass groups",
                    f"RRMSE {best['grouped_rrmse_pct']:.2f} ± {best['grouped_rrmse_sd_pct']:.2f} %",
                    f"best model {best['model']} ({best['ph_measure']} pH) over {int(best['grouped_splits'])} "
                    f"grouped splits; thesis {target_rrmse_pct} %",
                    "good" if best["grouped_rrmse_pct"] <= target_rrmse_pct else "bad")


def markdown_table(summary: pd.DataFrame) -> str:
    """The README table: grouped-random (mean +/- sd over splits) and A->B columns."""
    ab = [c[: -len("_rrmse_pct")] for c in summary if c.startswith("AB_") and c.endswith("_rrmse_pct")]
    head = ["Model", "pH measure", "grouped RRMSE % (mean ± sd)", "grouped RMSE (log10)", "splits", "degrees (CV)"]
    for tag in ab:
        rule = "CV degree" if tag == "AB_cv" else f"degree {tag[4:]}"
        head += [f"A→B RRMSE % ({rule})", f"A→B RMSE ({rule})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        cells = [r["model"], r["ph_measure"], f"{r['grouped_rrmse_pct']:.2f} ± {r['grouped_rrmse_sd_pct']:.2f}",
                 f"{r['grouped_rmse']:.3f}", int(r["grouped_splits"]), r["grouped_degrees"]]
        for tag in ab:
            deg = "" if tag != "AB_cv" or r[tag + "_degree"] <= 0 else f" (p={int(r[tag + '_degree'])})"
            cells += [f"{r[tag + '_rrmse_pct']:.2f}{deg}", f"{r[tag + '_rmse']:.3f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- model cards / predict
def training_range(frame: pd.DataFrame, features: Iterable[str]) -> dict[str, list[float]]:
    cols = sorted({*features, "pH", *[c for c in frame if c.startswith("x_")]})
    return {c: [float(frame[c].min()), float(frame[c].max())] for c in cols}


def model_card(model: PolynomialRateModel, frame: pd.DataFrame, curve: pd.DataFrame,
               ph_measure: str) -> dict[str, Any]:
    card = model.to_dict()
    card.update({
        "ph_measure": ph_measure, "target_unit": f"log10({RATE_UNIT})",
        "training_range": training_range(frame, model.spec.features),
        "training_glasses": sorted(frame["glass"].unique().tolist()),
        "n_train": len(frame), "cv_curve": curve.to_dict("records"),
        "train_rrmse": rrmse(model.predict(frame), frame["log10_rate"]),
    })
    return card


def predict_inputs(card: Mapping[str, Any], inputs: Sequence[Mapping[str, Any]],
                   tolerance: float = 1e-9) -> pd.DataFrame:
    """Rates for user compositions/pH values; each row says ok / out_of_range / refused and why."""
    model = model_from_card(card)
    rng = card["training_range"]
    rows = []
    for i, item in enumerate(inputs):
        label = str(item.get("label", f"input{i}"))
        comp = item.get("composition")
        phs = np.atleast_1d(np.asarray(item.get("pH", []), dtype=float))
        if not isinstance(comp, Mapping) or not len(phs):
            raise DissolutionDataError(
                f"dissolution.predict.inputs[{i}]: expected 'composition' (oxide: mol) and 'pH' (list)")
        base = {"label": label, "composition": json.dumps(dict(comp), sort_keys=True), "model": model.spec.name}
        try:
            desc = composition_descriptors(comp, phs, f"dissolution.predict.inputs[{i}] ({label})")
        except TopologyError as exc:
            rows += [{**base, "pH": p, "status": "refused", "reason": str(exc)} for p in phs]
            continue
        unknown_ox = [c for c in desc if c.startswith("x_") and c not in rng and desc[c].iloc[0] > 0]
        pred = model.predict(desc)
        for j, p in enumerate(phs):
            if not PH_RANGE[0] <= p <= PH_RANGE[1]:  # also NaN
                rows.append({**base, "pH": float(p), "status": "refused",
                             "reason": f"pH {p} outside {PH_RANGE[0]}-{PH_RANGE[1]}"})
                continue
            reasons = [f"{c[2:]} not in the training glasses" for c in unknown_ox]
            for c, (lo, hi) in rng.items():
                v = float(desc[c].iloc[j]) if c in desc else 0.0
                if v < lo - tolerance or v > hi + tolerance:
                    reasons.append(f"{c}={v:.4g} outside training [{lo:.4g}, {hi:.4g}]")
            rows.append({**base, "pH": float(p), "status": "out_of_range" if reasons else "ok",
                         "reason": "; ".join(reasons),
                         "log10_rate": float(pred[j]), "rate_mol_SiO2_cm2_s": float(10 ** pred[j]),
                         **{k: float(desc[k].iloc[j]) for k in ("n_c", "BS", "BB", "n_c_Si", "n_c_Al",
                                                                  "f_NBO", "n_SiOSi", "pH_acid", "pH_base")}})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- pipeline
def check_dissolution_config(cfg: Mapping[str, Any]) -> None:
    """Refuse at workflow start, without reading the table, what the jobs would refuse later:
    unknown models, a predict model or pH measure that is not fitted, and select/extrapolation
    queries that are not conditions on the columns a table has (oxide mol %, pH, rate)."""
    models = list(cfg.get("models", BUILTIN_MODELS))
    resolve_models(models, cfg.get("custom_models"))
    ph_measures = list(cfg.get("ph_measures", ["initial"]))
    predict = cfg.get("predict", {})
    if predict.get("model", "IV") not in models:
        raise DissolutionDataError(
            f"dissolution.predict.model: {predict.get('model', 'IV')!r} is not among dissolution.models "
            f"{models}; add it there or predict with one of them")
    if predict.get("ph_measure", "initial") not in ph_measures:
        raise DissolutionDataError(
            f"dissolution.predict.ph_measure: {predict.get('ph_measure', 'initial')!r} is not among "
            f"dissolution.ph_measures {ph_measures}")
    oxides = pd.DataFrame(columns=list(SUPPORTED_OXIDES), dtype=float)
    if cfg.get("select"):
        table = oxides.assign(pH_initial=[], pH_at_time_t=[], **{RATE_COLUMN: []})
        row_condition(table, cfg["select"], "dissolution.select")
    ext = cfg.get("extrapolation", {})
    if ext.get("enabled", True):
        for key in ("train", "test"):
            if ext.get(key):
                row_condition(oxides, ext[key], f"dissolution.extrapolation.{key}")


def run_evaluation(table_path: str | Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the evaluate rule produces, in memory: descriptors, scores, curves, cards."""
    checks = cfg.get("checks", {})
    ph_measures = cfg.get("ph_measures", ["initial"])
    df = load_table(table_path, cfg.get("select"),
                    oxide_sum_tolerance=checks.get("oxide_sum_tolerance", 0.5),
                    ph_range=tuple(checks.get("ph_range", (0.0, 14.0))),
                    log10_rate_range=tuple(checks.get("log10_rate_range", (-20.0, -5.0))),
                    ph_measures=ph_measures)
    specs = resolve_models(cfg.get("models", list(BUILTIN_MODELS)), cfg.get("custom_models"))
    ext = cfg.get("extrapolation", {})
    kw = {"max_degree": cfg.get("max_degree", 5), "cv_folds": cfg.get("cv_folds", 10),
          "alphas": cfg.get("ridge_alphas") or None}
    scores, preds, frames, curves, cards, coefs = [], [], {}, [], {}, []
    for ph_measure in ph_measures:
        frame = describe(df, ph_measure)
        frames[ph_measure] = frame
        scores.append(evaluate_grouped(frame, specs, n_splits=cfg.get("n_splits", 20),
                                       seed=cfg.get("seed", 0), test_fraction=cfg.get("test_fraction", 0.3),
                                       ph_measure=ph_measure, **kw))
        if ext.get("enabled", True):
            for degree in ext.get("degrees", ["cv", 1]):
                s, p = evaluate_extrapolation(frame, specs, train_query=ext.get("train", "Na2O == 25"),
                                              test_query=ext.get("test", "abs(Na2O - Al2O3) < 0.01"),
                                              ph_measure=ph_measure, degree=degree, **kw)
                scores.append(s)
                preds.append(p)
        cache: dict = {}
        for spec in specs:
            model, curve = fit_with_cv(frame, spec, **kw, cache=cache)
            curve["ph_measure"] = ph_measure
            curves.append(curve)
            cards[f"{spec.name}@{ph_measure}"] = model_card(model, frame, curve, ph_measure)
            c = model.coefficients()
            c["ph_measure"], c["degree"], c["fit"] = ph_measure, model.degree, "cv_degree"
            coefs.append(c)
            if spec.estimator == "poly" and model.degree != 1:  # the interpretable linear fit (thesis Figs. 5-14c, 5-15c)
                c = PolynomialRateModel(spec, 1).fit(frame).coefficients()
                c["ph_measure"], c["degree"], c["fit"] = ph_measure, 1, "linear"
                coefs.append(c)
    scores = pd.concat(scores, ignore_index=True)
    summary = summary_table(scores, cfg.get("target_rrmse_pct", 3.76))
    return {"table": df, "frames": frames, "scores": scores, "summary": summary,
            "extrapolation_predictions": pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(),
            "curves": pd.concat(curves, ignore_index=True), "cards": cards,
            "coefficients": pd.concat(coefs, ignore_index=True), "specs": specs}


# ----------------------------------------------------------------------------- report
def _glass_order(frame: pd.DataFrame) -> list[str]:
    g = frame.groupby("glass")["n_c"].first().sort_values()
    return list(g.index)


def report_parts(res: Mapping[str, Any], predictions: pd.DataFrame | None, cfg: Mapping[str, Any],
                 table_path: str) -> list[str]:
    """HTML parts of the dissolution report section (figures inline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitriflow.report import figure_html, note_html, panel_grid, table_html

    def _panel_grid(n: int):  # square panels, six to a row
        return panel_grid(n, ncols=6, size=(2.6, 2.6), layout="constrained")

    target = float(cfg.get("target_rrmse_pct", 3.76))
    summary, scores, specs = res["summary"], res["scores"], res["specs"]
    ph0 = cfg.get("ph_measures", ["initial"])[0]
    frame = res["frames"][ph0]
    parts = [note_html(
        f"Data: {table_path} ({len(frame)} measurements, {frame['glass'].nunique()} glasses, "
        f"{frame['group'].nunique()} (glass, initial pH) groups). Target: log10 forward rate in {RATE_UNIT}. "
        f"RRMSE = RMSE / |mean measured log10 rate| (thesis Eq. 5-1); 1 % is about "
        f"{abs(frame['log10_rate'].mean()) / 100:.3f} log units here. Protocol (a): "
        f"{int(summary['grouped_splits'].max())} random splits with distinct test sets, each holding out "
        f"{100 * cfg.get('test_fraction', 0.3):.0f} % of the groups; degree chosen by grouped 10-fold CV inside each training set. Protocol (b): "
        f"train {cfg.get('extrapolation', {}).get('train', 'Na2O == 25')!r}, test "
        f"{cfg.get('extrapolation', {}).get('test', 'abs(Na2O - Al2O3) < 0.01')!r} minus glasses seen in training.")]
    best = summary.loc[summary["grouped_rrmse_pct"].idxmin()]
    verdict = "meets" if best["grouped_rrmse_pct"] <= target else "does not meet"
    parts.append(note_html(
        f"Best grouped-random model: {best['model']} ({best['ph_measure']} pH), "
        f"{best['grouped_rrmse_pct']:.2f} +/- {best['grouped_rrmse_sd_pct']:.2f} % RRMSE over "
        f"{int(best['grouped_splits'])} splits; this {verdict} the thesis' {target} % (single split). "
        f"{int(best['splits_at_or_below_target'])} of {int(best['grouped_splits'])} splits are at or below it; "
        f"standard error of the mean {best['grouped_rrmse_sd_pct'] / math.sqrt(best['grouped_splits']):.2f} points."
        + (" Model V's descriptors (n_SiOSi, f_NBO) and the V ensembles were chosen after seeing grouped scores "
           "of these glasses, so this score is optimistic (docs/dissolution.md)." if best["model"].startswith("V") else ""),
        "note" if verdict == "meets" else "bad"))
    parts.append(table_html(summary, "Models: grouped-random test (mean, sd over splits) and A->B extrapolation"))

    # CV curves (Figs. 5-1, 5-4, 5-6)
    curves = res["curves"][res["curves"]["ph_measure"] == ph0]
    with_degree = [s for s in specs if s.estimator in ("poly", "ridge", "mixed")]  # GP/ensemble: no p
    fig, axes = _panel_grid(len(with_degree))
    for ax, spec in zip(axes, with_degree, strict=True):
        c = curves[curves["model"] == spec.name]
        ax.plot(c["degree"], 100 * c["train_rrmse"], "o-", label="train")
        ax.plot(c["degree"], 100 * c["validation_rrmse"], "s--", label="validation")
        ax.set_yscale("log")
        ax.set_title(f"Model {spec.name}")
        ax.set_xlabel("polynomial degree p")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("RRMSE (%)")
    axes[0].legend(fontsize=7)
    parts.append(figure_html(fig, f"RRMSE vs polynomial degree, grouped 10-fold CV on all data ({ph0} pH); "
                                  "Model I in rate space, others in log10 rate."))

    # per-split distribution
    g = scores[(scores.protocol == "grouped_random")]
    fig, ax = plt.subplots(figsize=(7, 3))
    labels, data = [], []
    for (m, phm), sub in g.groupby(["model", "ph_measure"], sort=False):
        labels.append(f"{m}\n{phm}")
        data.append(100 * sub["test_rrmse"].to_numpy())
    ax.boxplot(data)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6)
    ax.axhline(target, color="r", lw=1, ls="--", label=f"thesis {target} %")
    ax.set_yscale("log")
    ax.set_ylabel("test RRMSE (%)")
    ax.legend(fontsize=7)
    parts.append(figure_html(fig, "Test RRMSE per grouped random split (protocol a)."))

    # parity plots: first split, all models
    te = grouped_split(frame["group"].to_numpy(), cfg.get("test_fraction", 0.3), cfg.get("seed", 0))
    fig, axes = _panel_grid(len(specs))
    lo, hi = frame["log10_rate"].min() - 0.5, frame["log10_rate"].max() + 0.5
    cache: dict = {}
    for ax, spec in zip(axes, specs, strict=True):
        m, _ = fit_with_cv(frame[~te], spec, cfg.get("max_degree", 5), cfg.get("cv_folds", 10),
                           cfg.get("ridge_alphas") or None, cache)
        for mask, lab, mk in ((~te, "train", "o"), (te, "test", "s")):
            ax.plot(frame.loc[mask, "log10_rate"], m.predict(frame[mask]), mk, ms=3, alpha=0.6, label=lab)
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{spec.name} ({_degree_code(m.degree) if m.degree <= 0 else f'p={m.degree}'}) test {100 * rrmse(m.predict(frame[te]), frame.loc[te, 'log10_rate']):.1f}%",
                     fontsize=8)
        ax.set_xlabel("measured log10 rate")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("predicted log10 rate")
    axes[0].legend(fontsize=7)
    parts.append(figure_html(fig, f"Parity, grouped split seed {cfg.get('seed', 0)} ({ph0} pH)."))

    # rate vs pH per glass with model curves
    cards = res["cards"]
    show = [k for k in (f"III@{ph0}", f"IV@{ph0}", cfg.get("predict", {}).get("model", "") + f"@{ph0}") if k in cards]
    show = list(dict.fromkeys(show))
    glasses = _glass_order(frame)
    ncol = 4
    nrow = math.ceil(len(glasses) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 2.6 * nrow), squeeze=False, sharey=True)
    grid = np.linspace(0.5, 13.0, 101)
    for ax, gl in zip(axes.flat, glasses, strict=False):
        sub = frame[frame["glass"] == gl]
        ax.plot(sub["pH"], sub["log10_rate"], "k.", ms=4)
        comp = {c[2:]: float(sub[c].iloc[0]) for c in sub if c.startswith("x_") and sub[c].iloc[0] > 0}
        desc = composition_descriptors(comp, grid)
        for key in show:
            m = model_from_card(cards[key])
            ax.plot(grid, m.predict(desc), lw=1, label=f"{key.split('@')[0]} (p={m.degree})")
        ax.set_title(f"{gl}  n_c={sub['n_c'].iloc[0]:.3f}", fontsize=7)
        ax.set_xlabel("pH")
    for ax in axes.flat[len(glasses):]:
        ax.axis("off")
    axes[0][0].set_ylabel("log10 rate")
    axes[0][0].legend(fontsize=6)
    parts.append(figure_html(fig, "Rate vs pH per glass, models fitted on all data (CV degree)."))

    # rate vs n_c at pH 9 and 12 (Fig. 5-5)
    fig, ax = plt.subplots(figsize=(4, 3))
    gm = frame.groupby("group").agg(n_c=("n_c", "first"), ph=("pH_initial", "first"),
                                    y=("log10_rate", "mean"), sd=("log10_rate", "std"))
    for target_ph, mk in ((9.0, "o"), (12.0, "s")):
        sel = gm[(gm["ph"] - target_ph).abs() <= 0.5]
        ax.errorbar(sel["n_c"], sel["y"], yerr=sel["sd"], fmt=mk, ms=4, capsize=2, label=f"pH {target_ph:g} +/- 0.5")
        if len(sel) > 1:
            k, b = np.polyfit(sel["n_c"], sel["y"], 1)
            xs = np.linspace(sel["n_c"].min(), sel["n_c"].max(), 2)
            ax.plot(xs, k * xs + b, "--", lw=0.8)
    ax.set_xlabel("n_c (constraints per skeleton atom)")
    ax.set_ylabel("log10 rate (group mean)")
    ax.legend(fontsize=7)
    parts.append(figure_html(fig, "Rate vs number of constraints per atom at pH 9 and 12 (thesis Fig. 5-5)."))

    # A -> B
    ep = res["extrapolation_predictions"]
    if not ep.empty:
        ep = ep[ep["ph_measure"] == ph0]
        keys = [(m, r) for m in ("III", "IV", "IV-b") for r in ep["degree_rule"].unique()
                if ((ep["model"] == m) & (ep["degree_rule"] == r)).any()]
        fig, axes = _panel_grid(len(keys))
        for ax, (m, r) in zip(axes, keys, strict=True):
            sub = ep[(ep["model"] == m) & (ep["degree_rule"] == r)]
            for role, mk in (("train", "o"), ("test", "s")):
                q = sub[sub["role"] == role]
                ax.plot(q["log10_rate"], q["predicted"], mk, ms=3, alpha=0.6, label=role)
            t = sub[sub["role"] == "test"]
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_title(f"{m} p={int(sub['degree'].iloc[0])} ({r}): "
                         f"{100 * rrmse(t['predicted'], t['log10_rate']):.1f}%", fontsize=8)
        axes[0].legend(fontsize=7)
        parts.append(figure_html(fig, "A->B extrapolation (thesis Fig. 5-9): trained on the train family, "
                                      "tested on unseen glasses of the test family."))

    coefs = res["coefficients"]
    lin = coefs[(coefs["degree"] == 1) & (coefs["ph_measure"] == ph0)]
    parts.append(table_html(lin[["model", "term", "coef_normalised", "coef_physical", "unit_physical"]],
                            "Linear (p = 1) coefficients fitted on all data. coef_normalised: per unit of the "
                            "min-max normalised input (Eq. 5-7), in log10(rate) (Model I: in rate); "
                            "coef_physical: per physical unit as stated."))
    if predictions is not None and not predictions.empty:
        parts.append(table_html(predictions, "Predictions for the configured inputs (status out_of_range: "
                                             "outside the training descriptors; refused: outside the constraint rules)."))
    return parts


def read_model_cards(path: str | Path) -> dict[str, Any]:
    """The model cards of a models.json written by dissolution_evaluate; any other file is
    refused in one line naming it."""
    expected = "expected the models.json written by dissolution_evaluate (results/dissolution/models.json)"
    try:
        data = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DissolutionDataError(f"{path}: not JSON; {expected}") from None
    cards = data.get("models", data) if isinstance(data, dict) else None  # also a bare {key: card}
    if not cards or not isinstance(cards, dict) or not all(
            isinstance(c, dict) and "training_range" in c for c in cards.values()):
        raise DissolutionDataError(f"{path}: no dissolution model cards; {expected}")
    return cards


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m vitriflow.surrogates.dissolution predict --models models.json ...``;
    bad input raises ValueError, which ``vitriflow`` (and ``python -m``) print as one line."""
    ap = argparse.ArgumentParser(prog="vitriflow-dissolution", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict", help="rates for one composition at given pH values")
    p.add_argument("--models", required=True, help="models.json written by the dissolution stage")
    p.add_argument("--model", default="IV@initial", help="card key, e.g. IV@initial (default)")
    p.add_argument("--composition", required=True, help="oxide mol amounts, e.g. Na2O=20,Al2O3=10,SiO2=70")
    p.add_argument("--ph", type=float, nargs="+", required=True)
    d = sub.add_parser("descriptors", help="constraint counts of one composition")
    d.add_argument("--composition", required=True)
    args = ap.parse_args(argv)
    from vitriflow.cli import parse_oxides  # the other stages' --composition rules

    comp = canonical_oxides(parse_oxides(args.composition, [o.lower() for o in SUPPORTED_OXIDES]))
    if args.cmd == "descriptors":
        print(json.dumps(count_constraints(comp, "--composition").as_dict(), indent=2))
        return 0
    cards = read_model_cards(args.models)
    if args.model not in cards:
        raise DissolutionDataError(f"--model {args.model!r} not in {args.models}; available: {', '.join(cards)}")
    out = predict_inputs(cards[args.model], [{"label": "cli", "composition": comp, "pH": args.ph}])
    print(out.to_string(index=False))
    return 0


__all__ = [
    "BUILTIN_MODELS", "MODIFIER_OXIDES", "ModelSpec", "PolynomialRateModel", "DissolutionDataError",
    "describe", "evaluate_extrapolation", "evaluate_grouped", "grouped_split", "load_table", "markdown_table",
    "predict_inputs", "rrmse", "rmse", "run_evaluation", "select_degree", "summary_table",
    "validate_table",
]

if __name__ == "__main__":  # through the `vitriflow` entry point: bad input gives one line, no traceback
    from vitriflow.cli import main as vitriflow_main

    raise SystemExit(vitriflow_main(["dissolution", *sys.argv[1:]]))
