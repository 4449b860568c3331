"""Composition features of the viscosity surrogate (numpy only).

The network sees the 6 oxide mole fractions plus 33 descriptors derived from them (NBO/T,
optical basicity, the 30 pairwise oxide ratios x_i/(x_i+x_j), Al/(Al+M)): the same 39 columns
that the i-Melt database stores, recomputed here so that user compositions need only oxides.
The physics layers (density, heat capacity) use the raw mole fractions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OXIDES: tuple[str, ...] = ("sio2", "al2o3", "na2o", "k2o", "mgo", "cao")

# g/mol (IUPAC 2016 atomic weights, as in i-Melt)
_W = {
    "si": 28.085,
    "al": 26.982,
    "na": 22.990,
    "k": 39.098,
    "mg": 24.305,
    "ca": 40.078,
    "o": 15.9994,
}
MOLAR_MASS = np.array(
    [
        _W["si"] + 2 * _W["o"],
        2 * _W["al"] + 3 * _W["o"],
        2 * _W["na"] + _W["o"],
        2 * _W["k"] + _W["o"],
        _W["mg"] + _W["o"],
        _W["ca"] + _W["o"],
    ]
)
ATOMS_PER_OXIDE = np.array([3.0, 5.0, 3.0, 3.0, 2.0, 2.0])
# optical basicity of each oxide (Moretti 2005, Table 1)
_OPTBAS = np.array([0.48, 0.59, 1.15, 1.36, 0.78, 0.99])
N_FEATURES = 6 + 2 + 30 + 1


def composition_key(df: pd.DataFrame) -> pd.Series:
    """One string per row identifying its melt (oxide fractions to 1e-6), for grouping rows."""
    return df.loc[:, list(OXIDES)].round(6).astype(str).agg("|".join, axis=1)


def oxide_matrix(X, *, name: str = "compositions", tol: float = 1e-3) -> np.ndarray:
    """(n, 6) mole fractions from a DataFrame with oxide columns or an (n, 6) array.

    Rows are renormalised to sum 1 (mol% input is accepted); negative, non-finite or
    all-zero rows raise.
    """
    if isinstance(X, pd.DataFrame):
        missing = [o for o in OXIDES if o not in X.columns]
        if missing:
            raise ValueError(f"{name}: missing oxide columns {missing}; expected {list(OXIDES)}")
        arr = X.loc[:, list(OXIDES)].to_numpy(dtype=float)
    else:
        arr = np.asarray(X, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != 6:
            raise ValueError(
                f"{name}: expected shape (n, 6) in oxide order {list(OXIDES)}, got {arr.shape}"
            )
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name}: non-finite oxide fraction in row {int(np.where(~np.isfinite(arr))[0][0])}"
        )
    if (arr < -tol).any():
        raise ValueError(
            f"{name}: negative oxide fraction in row {int(np.where(arr < -tol)[0][0])}"
        )
    total = arr.sum(axis=1)
    if (total <= 0).any():
        raise ValueError(f"{name}: row {int(np.where(total <= 0)[0][0])} has no oxide content")
    return np.clip(arr, 0.0, None) / total[:, None]


def descriptors(x: np.ndarray) -> np.ndarray:
    """(n, 39) feature matrix from (n, 6) mole fractions (i-Melt column order)."""
    x = np.asarray(x, dtype=float)
    si, al = x[:, 0], x[:, 1]
    tet = si + 2 * al
    oxy = 2 * si + 3 * al + x[:, 2:].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        nbot = (2 * oxy - 4 * tet) / tet
        cols = [x, nbot[:, None], (x @ _OPTBAS)[:, None]]
        ratios = [x[:, i] / (x[:, i] + x[:, j]) for i in range(6) for j in range(6) if i != j]
        cols.append(np.stack(ratios, axis=1))
        cols.append((al / (al + x[:, 2:].sum(axis=1)))[:, None])
    out = np.concatenate(cols, axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def charge_balance(x: np.ndarray) -> np.ndarray:
    """(n, 4) kinked charge-balance terms from (n, 6) mole fractions: the excess of modifier
    oxides over Al2O3 and of Al2O3 over them, for all modifiers (Na2O, K2O, MgO, CaO) and for
    the alkalis alone.

    Al enters the glass network as tetrahedra charge-balanced by a modifier cation; modifiers beyond
    that make non-bridging oxygens, Al beyond it needs other sites. Tg, viscosity and Sconf(Tg)
    change slope at Al/(modifiers) = 1 (the viscosity maximum of the charge-balanced join), a kink
    that smooth descriptors cannot place.
    """
    x = np.asarray(x, dtype=float)
    al, alk, mods = x[:, 1], x[:, 2] + x[:, 3], x[:, 2:].sum(axis=1)
    return np.stack([np.maximum(mods - al, 0.0), np.maximum(al - mods, 0.0),
                     np.maximum(alk - al, 0.0), np.maximum(al - alk, 0.0)], axis=1)
