"""The rate estimators: least-squares / ridge polynomial on min-max normalised descriptors
(thesis Eq. 5-7), the mixed model with per-glass random effects, the ANOVA Gaussian process and
the equal-weight ensemble; each saves to and loads from a JSON model card. Metrics: RRMSE
(thesis Eq. 5-1: RMSE divided by the absolute mean of the measured values) and RMSE, both on
log10 rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.surrogates.dissolution.data import (
    DESCRIPTOR_UNITS,
    RATE_UNIT,
    DissolutionDataError,
)
from vitriflow.surrogates.dissolution.specs import ModelSpec


# ----------------------------------------------------------------------------- metrics
def rmse(pred, meas) -> float:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return float(np.sqrt(np.mean((pred - meas) ** 2)))


def rrmse(pred, meas) -> float:
    """Eq. 5-1: RMSE / |mean(measured)| (on log10 rate, relative to ~13 log units here)."""
    meas = np.asarray(meas, float)
    return rmse(pred, meas) / abs(float(np.mean(meas)))


# ----------------------------------------------------------------------------- linear algebra
def one_thread():
    """BLAS on one thread: these least-squares problems are tiny, and a multi-threaded BLAS on a
    busy machine made each 200x56 solve take 0.2 s instead of 0.1 ms."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def powers(n_features: int, degree: int) -> np.ndarray:
    from sklearn.preprocessing import PolynomialFeatures

    return PolynomialFeatures(degree).fit(np.zeros((1, n_features))).powers_


def penalised_solves(M: np.ndarray, y: np.ndarray,
                     penalties: Sequence[np.ndarray]) -> list[np.ndarray]:
    """min |M w - y|^2 / n + sum_k p_k w_k^2 for each diagonal penalty p (one Gram matrix)."""
    n = len(y)
    G, b = M.T @ M / n, M.T @ y / n
    return [np.linalg.solve(G + np.diag(p), b) for p in penalties]


def ridge_solve(A: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Ridge coefficients for several penalties at once (the intercept column, first, is free)."""
    return penalised_solves(A, y, [np.r_[0.0, np.full(A.shape[1] - 1, a)] for a in alphas])


def mixed_penalty(n_poly: int, n_effects: int, alpha: float, alpha_glass: float) -> np.ndarray:
    """Diagonal penalty of [A G]: intercept free, polynomial terms alpha, random effects
    alpha_glass (plus a 1e-12 jitter: glass intercepts sum to the intercept column)."""
    return np.r_[0.0, np.full(n_poly - 1, alpha), np.full(n_effects, alpha_glass)] + 1e-12


def _spec_from_card(d: Mapping[str, Any], estimator: str, members=()) -> ModelSpec:
    s = d["spec"]
    return ModelSpec(s["name"], tuple(s["features"]), s["target"], s.get("description", ""),
                     estimator, members)


# ----------------------------------------------------------------------------- polynomial
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
        self.powers = powers(X.shape[1], self.degree)
        if self.spec.target == "rate":  # keep the least squares well scaled (rates ~1e-13)
            self.y_scale = float(np.mean(np.abs(y)))
            self.rate_floor = float(y.min())
        A = self._design(X)
        if self.alpha > 0:
            self.coef = ridge_solve(A, y / self.y_scale, [self.alpha])[0]
        else:
            self.coef, *_ = np.linalg.lstsq(A, y / self.y_scale, rcond=None)
        return self

    def fit(self, frame: pd.DataFrame) -> PolynomialRateModel:
        with one_thread():
            X = self._features(frame)
            return self.fit_arrays(X, frame[self.spec.target].to_numpy(dtype=float))

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
            parts = [f"{f}'" + (f"^{k}" if k > 1 else "")
                     for f, k in zip(self.spec.features, p, strict=True) if k]
            names.append("*".join(parts) or "1")
        return names

    def coefficients(self) -> pd.DataFrame:
        """Coefficients on normalised features; for degree 1 also per physical unit."""
        unit_y = "log10(" + RATE_UNIT + ")" if self.spec.target == "log10_rate" else RATE_UNIT
        rows = []
        for name, c, p in zip(self.term_names(), self.coef * self.y_scale, self.powers,
                              strict=True):
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
            "spec": self.spec.card(), "estimator": self.spec.estimator, "degree": self.degree,
            "x_min": self.x_min.tolist(), "x_max": self.x_max.tolist(),
            "powers": self.powers.tolist(), "coef": self.coef.tolist(), "y_scale": self.y_scale,
            "rate_floor": self.rate_floor, "alpha": self.alpha, **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolynomialRateModel:
        m = cls(_spec_from_card(d, d.get("estimator", "poly")), int(d["degree"]))
        m.x_min, m.x_max = np.asarray(d["x_min"], float), np.asarray(d["x_max"], float)
        m.powers, m.coef = np.asarray(d["powers"], int), np.asarray(d["coef"], float)
        m.y_scale, m.rate_floor = float(d["y_scale"]), d.get("rate_floor")
        m.alpha = float(d.get("alpha", 0.0))
        known = {"spec", "estimator", "degree", "x_min", "x_max", "powers", "coef", "y_scale",
                 "rate_floor", "alpha"}
        m.extra = {k: v for k, v in d.items() if k not in known}
        return m


# ----------------------------------------------------------------------------- mixed model
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
        terms = [np.ones(len(frame)) if t == "1" else frame[t].to_numpy(dtype=float)
                 for t in self.effect_terms]
        G = np.zeros((len(frame), len(self.glass_x) * len(terms)))
        rows = np.flatnonzero(idx >= 0)
        for k, t in enumerate(terms):
            G[rows, idx[rows] * len(terms) + k] = t[rows]
        return G

    def setup(self, frame: pd.DataFrame) -> MixedRateModel:
        """Normalisation, polynomial powers and the glass list from the training rows."""
        X = self._features(frame)
        self.x_min, self.x_max = X.min(axis=0), X.max(axis=0)
        self.powers = powers(X.shape[1], self.degree)
        self.x_columns = sorted(c for c in frame if c.startswith("x_"))
        self.glass_x = np.unique(frame[self.x_columns].to_numpy(dtype=float).round(9), axis=0)
        return self

    def designs(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self._design(self._features(frame)), self._effects_design(frame)

    def fit(self, frame: pd.DataFrame) -> MixedRateModel:
        with one_thread():
            self.setup(frame)
            A, G = self.designs(frame)
            pen = mixed_penalty(A.shape[1], G.shape[1], self.alpha, self.alpha_glass)
            y = frame["log10_rate"].to_numpy(dtype=float)
            w = penalised_solves(np.hstack([A, G]), y, [pen])[0]
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
        names = [", ".join(f"{c[2:]} {100 * v:.4g}"
                           for c, v in zip(self.x_columns, g, strict=True) if v > 0)
                 for g in self.glass_x]
        for name, coefs in zip(names, self.glass_coef, strict=True):
            for t, c in zip(self.effect_terms, coefs, strict=True):
                rows.append({"model": self.spec.name,
                             "term": f"glass[{name}]" + ("" if t == "1" else f"*{t}"),
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
        m.glass_x = np.asarray(d["glass_x"], float)
        m.glass_coef = np.asarray(d["glass_coef"], float)
        return m


# ----------------------------------------------------------------------------- ensemble
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
        return {"spec": self.spec.card(), "estimator": "ensemble", "degree": -1,
                "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnsembleRateModel:
        members = [model_from_card(c) for c in d["members"]]
        return cls(_spec_from_card(d, "ensemble", tuple(m.spec for m in members)), members)


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
        return (p[0] * np.exp(-0.5 * _sqdist(Ap, Bp, ls[0]))
                + p[1] * np.exp(-0.5 * _sqdist(Ac, Bc, ls[1]))
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
        with one_thread():
            for start in (np.log(0.3), 0.0):
                th0 = np.r_[np.log([0.5, 0.5, 0.5]), np.full(n_ls, start), noise0]
                r = minimize(self._nlml, th0, args=(Z, yn), method="L-BFGS-B", bounds=bounds)
                if best is None or r.fun < best.fun:
                    best = r
            self.theta, self.Z = best.x, Z
            K = (self._kernel(self.theta[:-1], Z, Z)
                 + (np.exp(self.theta[-1]) + 1e-8) * np.eye(len(y)))
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
        names = (["var_pH", "var_comp", "var_pH_x_comp"] + [f"ls_{x}" for x in f[:i]]
                 + [f"ls_{x}" for x in f[i:]] + [f"ls_{x}_in_product" for x in f[:i]]
                 + [f"ls_{x}_in_product" for x in f[i:]] + ["noise_var"])
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
            "spec": self.spec.card(), "estimator": "gp", "degree": 0,
            "theta": self.theta.tolist(), "x_min": self.x_min.tolist(),
            "x_max": self.x_max.tolist(), "y_mean": self.y_mean, "y_sd": self.y_sd,
            "Z": self.Z.tolist(), "weights": self.weights.tolist(),
            "hyperparameters": self.hyperparameters(), **self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnovaGPRateModel:
        m = cls(_spec_from_card(d, "gp"))
        m.theta, m.x_min, m.x_max = (np.asarray(d[k], float) for k in ("theta", "x_min", "x_max"))
        m.y_mean, m.y_sd = float(d["y_mean"]), float(d["y_sd"])
        m.Z, m.weights = np.asarray(d["Z"], float), np.asarray(d["weights"], float)
        return m


def model_from_card(card: Mapping[str, Any]):
    """The fitted model of a card (polynomial/ridge, GP, mixed or ensemble)."""
    cls = {"gp": AnovaGPRateModel, "mixed": MixedRateModel, "ensemble": EnsembleRateModel}
    return cls.get(card.get("estimator"), PolynomialRateModel).from_dict(card)
