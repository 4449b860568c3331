"""Room-temperature density of Na2O-K2O-MgO-CaO-Al2O3-SiO2 glasses from oxide partial molar volumes.

Model (one mole of oxides, mole fractions x_i summing to 1)::

    V_m(x) = sum_i x_i V_i                                   additive partial molar volumes
           + dV_ex  * a_ex(x)                                 Al2O3 in excess of M2O + MO
           + dV_MO  * a_MO(x)                                 Al2O3 charge-balanced by M2+
           + sum_(i<j) W_ij x_i x_j                           Margules (regular-solution) terms
    rho(x) = sum_i x_i M_i / V_m(x)

* Additive oxide partial molar volumes are the classical description of silicate-melt volumes
  (Bottinga & Weill 1970, Am. J. Sci. 269:169; Lange & Carmichael 1987, Geochim. Cosmochim.
  Acta 51:2931, who found melt volumes linear in composition except for TiO2-bearing liquids).
  For glasses a purely additive model misses 2-3 % (silica comes out at 2.29 g/cm3).
* Aluminium: tetrahedral AlO4- needs a charge-balancing cation. Al2O3 is assigned to alkalis
  first, then to alkaline earths; ``a_MO`` is the Al2O3 balanced by Mg/Ca and ``a_ex`` the Al2O3
  left without a compensator (peraluminous glasses, where Al takes 5-/6-fold coordination and
  oxygen triclusters form). This follows the structural-unit picture of Doweidar's density
  models (AlO4 units while MgO + CaO >= Al2O3, AlO3/2 units for the excess) and the
  composition-dependent Al2O3 volume of Bottinga, Weill & Richet 1982 (Geochim. Cosmochim.
  Acta 46:909).
* Margules terms W_ij x_i x_j are the quadratic terms of the statistical glass-density models
  (Fluegel 2007, J. Am. Ceram. Soc. 90:2622); Priven 2004 (Glass Technol. 45:244) makes
  partial coefficients depend on composition for the same reason. They vanish at every
  end-member, so pure oxides are given by V_i alone. V_SiO2 is not fitted but pinned to
  vitreous silica, M_SiO2 / 2.20 g/cm3, the best-known glass density and the end-member the
  structure stage packs most often (freeing it moves silica to 2.18 and gains nothing in
  cross-validation).

Which non-linear terms are kept, the ridge strength and the coefficients come from
``benchmarks/glass_density_fit.py`` (forward selection by composition-grouped cross-validation
on i-Melt's train+valid density rows, Huber-weighted least squares on the density itself; see
docs/glass_density.md). Regenerate the constants below (``SHIPPED_*``) in place with::

    .venv/bin/python benchmarks/glass_density_fit.py --write

Only the six oxides above are covered; anything else raises ``ValueError``. Predictions far from
glass-forming compositions (e.g. > 60 mol% of a modifier) are extrapolations of the same
formula: finite and positive, but not validated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vitriflow.surrogates.viscosity.features import ATOMS_PER_OXIDE, MOLAR_MASS, oxide_matrix

OXIDES: tuple[str, ...] = ("SiO2", "Al2O3", "Na2O", "K2O", "MgO", "CaO")
_KEY = {o.lower(): i for i, o in enumerate(OXIDES)}
AVOGADRO = 6.02214076e23
MOLAR_MASS_G_MOL: dict[str, float] = dict(zip(OXIDES, MOLAR_MASS.tolist(), strict=True))
ATOMS_PER_FORMULA: dict[str, float] = dict(zip(OXIDES, ATOMS_PER_OXIDE.tolist(), strict=True))
_SI, _AL, _NA, _K, _MG, _CA = range(6)
SILICA_DENSITY_G_CM3 = 2.20
SILICA_PIN: dict[str, float] = {"SiO2": float(MOLAR_MASS[_SI]) / SILICA_DENSITY_G_CM3}
"""Pinned partial molar volume of SiO2 (cm3/mol) used by the shipped fit."""


def _al_roles(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Al2O3 balanced by MgO+CaO, Al2O3 in excess of all M2O+MO); alkalis balance Al first."""
    al = x[:, _AL]
    by_alkali = np.minimum(al, x[:, _NA] + x[:, _K])
    by_mo = np.minimum(al - by_alkali, x[:, _MG] + x[:, _CA])
    return by_mo, np.clip(al - by_alkali - by_mo, 0.0, None)


def _pair(i: int, j: int):
    return lambda x: x[:, i] * x[:, j]


TERMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Al2O3_excess": lambda x: _al_roles(x)[1],
    "Al2O3_by_MO": lambda x: _al_roles(x)[0],
    **{f"{OXIDES[i]}*{OXIDES[j]}": _pair(i, j) for i in range(6) for j in range(i + 1, 6)},
}
"""Candidate non-linear terms (name -> function of (n, 6) mole fractions), each in mol/mol."""


def term_matrix(x: np.ndarray, terms: Sequence[str]) -> np.ndarray:
    """(n, 6 + len(terms)) design matrix: the six mole fractions, then the named terms."""
    unknown = [t for t in terms if t not in TERMS]
    if unknown:
        raise ValueError(f"glass density terms {unknown} unknown; expected names from "
                         f"{list(TERMS)}")
    return np.column_stack([x, *[TERMS[t](x) for t in terms]]) if terms else np.asarray(x)


@dataclass
class GlassDensityModel:
    """Partial-molar-volume glass density model with explicit non-linear terms.

    ``fit`` minimises sum_n h(rho_pred - rho_obs) / N + ridge * sum_k c_k^2, with the Huber loss
    h(r) = r^2 for |r| <= huber_g_cm3 and 2 huber_g_cm3 |r| - huber_g_cm3^2 beyond, over the
    six partial volumes V_i (cm3/mol, unpenalised) and the term coefficients c_k
    (cm3/mol) by iteratively reweighted least squares on V_m: the weights M/(V_pred V_obs) make
    each volume residual equal to the density residual at the solution, and Huber weights
    let residuals beyond ``huber_g_cm3`` count linearly (None: plain least squares).
    ``fixed`` pins partial volumes (e.g. {"SiO2": 27.31}). Deterministic; numpy only.
    """

    terms: tuple[str, ...] = ()
    ridge: float = 0.0
    huber_g_cm3: float | None = 0.02
    fixed: dict[str, float] = field(default_factory=dict)
    max_iter: int = 100
    partial_volumes_: np.ndarray | None = None
    coef_: np.ndarray | None = None

    def __post_init__(self):
        self.terms = tuple(self.terms)
        term_matrix(np.zeros((1, 6)), self.terms)  # validates names
        bad = [k for k in self.fixed if k not in OXIDES]
        if bad:
            raise ValueError(f"GlassDensityModel.fixed: {bad} not in {list(OXIDES)}")
        if self.ridge < 0 or (self.huber_g_cm3 is not None and self.huber_g_cm3 <= 0):
            raise ValueError(f"GlassDensityModel: ridge >= 0 and huber_g_cm3 > 0 expected, got "
                             f"{self.ridge}, {self.huber_g_cm3}")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y) -> GlassDensityModel:
        """Fit on mole fractions ``X`` ((n, 6) array or DataFrame) and densities ``y`` (g/cm3)."""
        x = oxide_matrix(_frame_or_array(X), name="GlassDensityModel.fit X")
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != x.shape[0] or not np.isfinite(y).all() or (y <= 0).any():
            raise ValueError(f"GlassDensityModel.fit: y must hold {x.shape[0]} finite positive "
                             "densities (g/cm3)")
        F = term_matrix(x, self.terms)
        mass = x @ MOLAR_MASS
        v_obs = mass / y
        fixed_idx = [OXIDES.index(k) for k in self.fixed]
        free = np.array([i for i in range(F.shape[1]) if i not in fixed_idx])
        offset = sum(F[:, i] * self.fixed[OXIDES[i]] for i in fixed_idx) if fixed_idx else 0.0
        n = len(y)
        pen = np.zeros(len(free))
        pen[free >= 6] = self.ridge * n
        beta = np.zeros(F.shape[1])
        for i in fixed_idx:
            beta[i] = self.fixed[OXIDES[i]]
        v_pred = v_obs.copy()
        robust = np.ones(n)
        for _ in range(self.max_iter):
            # rho_pred - rho_obs = -mass (V_pred - V_obs) / (V_pred V_obs): exact at convergence
            w = mass / (v_pred * v_obs)
            sw = np.sqrt(w * w * robust)
            A = F[:, free] * sw[:, None]
            b = (v_obs - offset) * sw
            sol = np.linalg.solve(A.T @ A + np.diag(pen), A.T @ b)
            step = np.max(np.abs(sol - beta[free]))
            beta[free] = sol
            v_pred = F @ beta
            if (v_pred <= 0).any():
                raise ValueError("GlassDensityModel.fit: a fitted molar volume is not positive; "
                                 "check the data (densities in g/cm3, fractions of the six oxides)")
            if self.huber_g_cm3 is not None:
                r = np.abs(mass / v_pred - y)
                robust = np.where(r <= self.huber_g_cm3, 1.0,
                                  self.huber_g_cm3 / np.maximum(r, 1e-300))
            if step < 1e-10:
                break
        self.partial_volumes_ = beta[:6].copy()
        self.coef_ = beta[6:].copy()
        return self

    # -- prediction ------------------------------------------------------------------------
    def _check_fitted(self):
        if self.partial_volumes_ is None or self.coef_ is None:
            raise ValueError("GlassDensityModel: not fitted (call fit or use shipped_model())")

    def molar_volume(self, X) -> np.ndarray:
        """Molar volume (cm3 per mole of oxides) for each row of mole fractions."""
        self._check_fitted()
        x = oxide_matrix(_frame_or_array(X), name="glass density compositions")
        return term_matrix(x, self.terms) @ np.concatenate([self.partial_volumes_, self.coef_])

    def predict(self, X) -> np.ndarray:
        """Density (g/cm3) for each row of mole fractions ((n, 6) array or DataFrame)."""
        x = oxide_matrix(_frame_or_array(X), name="glass density compositions")
        return (x @ MOLAR_MASS) / self.molar_volume(x)

    def volume_per_atom(self, X) -> np.ndarray:
        """Volume per atom (Å^3) for each row: V_m / (atoms per mole of oxides) / N_A."""
        x = oxide_matrix(_frame_or_array(X), name="glass density compositions")
        return self.molar_volume(x) / (x @ ATOMS_PER_OXIDE) / AVOGADRO * 1e24

    # -- (de)serialisation -----------------------------------------------------------------
    def coefficients(self) -> dict[str, float]:
        """{'V_SiO2': .., ..., term: ..} in cm3/mol."""
        self._check_fitted()
        out = {f"V_{o}": float(v) for o, v in zip(OXIDES, self.partial_volumes_, strict=True)}
        out.update({t: float(c) for t, c in zip(self.terms, self.coef_, strict=True)})
        return out

    @classmethod
    def from_coefficients(cls, coefficients: Mapping[str, float], **kw) -> GlassDensityModel:
        """Model from a ``coefficients()`` mapping (partial volumes ``V_<oxide>`` + terms)."""
        missing = [f"V_{o}" for o in OXIDES if f"V_{o}" not in coefficients]
        if missing:
            raise ValueError(f"glass density coefficients: missing {missing}")
        terms = tuple(k for k in coefficients if not k.startswith("V_"))
        m = cls(terms=terms, **kw)
        m.partial_volumes_ = np.array([float(coefficients[f"V_{o}"]) for o in OXIDES])
        m.coef_ = np.array([float(coefficients[t]) for t in terms])
        return m


def _frame_or_array(X):
    """DataFrame columns matched to the six oxides in any case; arrays pass through."""
    if isinstance(X, pd.DataFrame):
        cols = {str(c).lower(): c for c in X.columns}
        missing = [o for o in OXIDES if o.lower() not in cols]
        if missing:
            raise ValueError(f"glass density: DataFrame lacks oxide columns {missing}; expected "
                             f"mole fractions in columns {[o.lower() for o in OXIDES]}")
        return X.loc[:, [cols[o.lower()] for o in OXIDES]].to_numpy(dtype=float)
    return X


# --- shipped fit, regenerated by `benchmarks/glass_density_fit.py --write` ----------------
# i-Melt NKCMAS density rows, train+valid (640 rows), imelt 2.2.0
SHIPPED_RIDGE = 3e-08
SHIPPED_HUBER_G_CM3 = 0.02
SHIPPED_COEFFICIENTS: dict[str, float] = {
    'V_SiO2': 27.310818,
    'V_Al2O3': 39.139418,
    'V_Na2O': 25.480978,
    'V_K2O': 38.856236,
    'V_MgO': 9.194695,
    'V_CaO': 17.465648,
    'SiO2*CaO': -9.166323,
    'Na2O*MgO': 22.892863,
    'Al2O3_excess': -7.030187,
    'SiO2*Na2O': -10.500891,
    'Al2O3_by_MO': -4.875167,
    'SiO2*K2O': -9.608754,
    'Al2O3*CaO': 6.423221,
}
# --- end of shipped fit -----------------------------------------------------------------------

_SHIPPED: GlassDensityModel | None = None


def shipped_model() -> GlassDensityModel:
    """The model with the shipped coefficients (cached)."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = GlassDensityModel.from_coefficients(
            SHIPPED_COEFFICIENTS, ridge=SHIPPED_RIDGE, huber_g_cm3=SHIPPED_HUBER_G_CM3)
    return _SHIPPED


# Largest mole fraction of each oxide among i-Melt's density rows (all splits): the box the fit
# has seen. Inside it the model interpolates; outside it extrapolates the same formula.
CALIBRATION_MAX: dict[str, float] = {
    "SiO2": 1.0, "Al2O3": 0.60, "Na2O": 0.475, "K2O": 0.425, "MgO": 0.50, "CaO": 0.75}


# --- plain functions for the workflow ---------------------------------------------------------
def _uncovered(oxide_fractions: Mapping[str, float]) -> list[str]:
    return [str(k) for k in oxide_fractions if str(k).strip().lower() not in _KEY]


def covers(oxide_fractions: Mapping[str, float]) -> bool:
    """True if every oxide named is one of ``OXIDES`` (any case) and the amounts are usable."""
    try:
        _vector(oxide_fractions, "covers")
    except ValueError:
        return False
    return True


def _vector(oxide_fractions: Mapping[str, float], where: str) -> np.ndarray:
    """Normalised (6,) mole-fraction vector from {oxide formula: mole fraction or mol%}."""
    if isinstance(oxide_fractions, pd.Series):
        oxide_fractions = oxide_fractions.to_dict()
    if not isinstance(oxide_fractions, Mapping) or not oxide_fractions:
        raise ValueError(f"{where}: expected a non-empty mapping {{oxide: amount}} over "
                         f"{list(OXIDES)}, got {oxide_fractions!r}")
    bad = _uncovered(oxide_fractions)
    if bad:
        raise ValueError(f"{where}: oxide {bad[0]!r} is not covered by the glass density model; "
                         f"expected only {list(OXIDES)}")
    v = np.zeros(6)
    seen: dict[int, str] = {}
    for k, amount in oxide_fractions.items():
        i = _KEY[str(k).strip().lower()]
        if i in seen:
            raise ValueError(f"{where}: oxide {OXIDES[i]} given twice ({seen[i]!r} and {k!r})")
        seen[i] = str(k)
        try:
            a = float(amount)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: amount of {k!r} is {amount!r}; expected a number") from None
        if not math.isfinite(a) or a < 0:
            raise ValueError(f"{where}: amount of {k!r} is {amount!r}; expected a finite "
                             "number >= 0")
        v[i] = a
    total = v.sum()
    if total <= 0:
        raise ValueError(f"{where}: all oxide amounts are zero")
    return v / total


def within_calibration(oxide_fractions: Mapping[str, float]) -> bool:
    """True if the (covered) composition has no oxide above its ``CALIBRATION_MAX`` fraction."""
    x = _vector(oxide_fractions, "within_calibration")
    return bool(all(x[i] <= CALIBRATION_MAX[o] + 1e-9 for i, o in enumerate(OXIDES)))


def molar_volume_cm3(oxide_fractions: Mapping[str, float]) -> float:
    """Molar volume (cm3 per mole of oxides) of a glass given as {oxide: mole fraction or mol%}."""
    x = _vector(oxide_fractions, "molar_volume_cm3")[None]
    return float(shipped_model().molar_volume(x)[0])


def density_g_cm3(oxide_fractions: Mapping[str, float]) -> float:
    """Room-temperature glass density (g/cm3) from {oxide: mole fraction or mol%}."""
    return float(shipped_model().predict(_vector(oxide_fractions, "density_g_cm3")[None])[0])


def volume_per_atom_A3(oxide_fractions: Mapping[str, float]) -> float:
    """Volume per atom (Å^3) of the glass: molar volume / atoms per mole of oxides / N_A."""
    x = _vector(oxide_fractions, "volume_per_atom_A3")[None]
    return float(shipped_model().volume_per_atom(x)[0])


def predict(X) -> np.ndarray:
    """Densities (g/cm3) for a DataFrame with the six mole-fraction columns (sio2 ... cao, any
    case; other columns ignored) or an (n, 6) array in ``OXIDES`` order. Rows are normalised."""
    return shipped_model().predict(X)


def predict_molar_volume(X) -> np.ndarray:
    """Molar volumes (cm3/mol) for the same inputs as ``predict``."""
    return shipped_model().molar_volume(X)
