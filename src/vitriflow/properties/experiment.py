"""Measured glass properties for MD compositions, and MD-vs-experiment parity tables.

Measurements come from the tidy i-Melt NKCMAS table of ``vitriflow.surrogates.viscosity.data``
(columns property, sio2, al2o3, na2o, k2o, mgo, cao as mole fractions, wavelength_um, value,
unit): either the Parquet file that the ingest rule writes or, without a path, read from the
HDF5 files of the installed ``imelt`` package.

Matching: a database glass matches a composition when every oxide mole fraction differs by
at most ``tol`` (default 0.01 = 1 mol%), i.e. the max-norm (Chebyshev) distance
``max_i |x_i - y_i| <= tol``. Max-norm is the usual reading of a composition tolerance
("each oxide within +-1 mol% of nominal", as analysed compositions are quoted per oxide) and
does not shrink with the number of components, unlike L1/2. Oxides outside the six i-Melt
columns count fully (the database has 0 of them), so a glass with 2 mol% B2O3 matches
nothing at 1 mol%. ``metric="l1half"`` (half the L1 distance: the mole fraction that must be
moved to turn one composition into the other) is available.

Refractive indices are kept only near the sodium D line (0.5893 um, +-0.005 um); averaging
over wavelengths would mix in dispersion.

Vitreous silica references (room temperature): density 2.20 g/cm3; bulk, shear and Young's
moduli 36.7, 31.3 and 72.9 GPa; Poisson's ratio 0.17 (W. Pabst and E. Gregorova, "Elastic
properties of silica polymorphs - a review", Ceramics-Silikaty 57 (2013) 167-184).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vitriflow.properties.network import oxide_fractions
from vitriflow.surrogates.viscosity.features import OXIDES

__all__ = [
    "MEASURED_PROPERTIES",
    "RI_WAVELENGTH_UM",
    "VITREOUS_SILICA",
    "composition_distance",
    "is_pure_silica",
    "load_measured",
    "match_rows",
    "measured_properties",
    "measured_table",
    "oxide_vector",
    "parity_table",
    "spearman_tg",
]

MEASURED_PROPERTIES: tuple[str, ...] = ("density", "elastic_modulus", "cte", "tg",
                                        "refractive_index")
DEFAULT_TOL = 0.01
RI_WAVELENGTH_UM = 0.5893
RI_WAVELENGTH_TOL_UM = 0.005
SILICA_SOURCE = "Pabst & Gregorova, Ceramics-Silikaty 57 (2013) 167"
# property -> (value, unit); elastic_modulus is Young's modulus as in i-Melt
VITREOUS_SILICA: dict[str, tuple[float, str]] = {
    "density": (2.20, "g/cm3"),
    "bulk_modulus": (36.7, "GPa"),
    "shear_modulus": (31.3, "GPa"),
    "elastic_modulus": (72.9, "GPa"),
    "poisson_ratio": (0.17, "1"),
}
_OXIDE_FORMULA = {"SiO2": "sio2", "Al2O3": "al2o3", "Na2O": "na2o", "K2O": "k2o",
                  "MgO": "mgo", "CaO": "cao"}
_REQUIRED = ("property", *OXIDES, "value")
MEASURED_COLUMNS = ["property", "unit", "source", "exp_mean", "exp_std", "exp_n", "exp_min",
                    "exp_max", "distance_min", "distance_max", "metric", "tol"]


def load_measured(path: str | os.PathLike | None = None,
                  properties: Sequence[str] = MEASURED_PROPERTIES) -> pd.DataFrame:
    """Tidy measured-property table restricted to ``properties``.

    ``path``: the Parquet table of the ingest rule
    (``results/surrogates/viscosity/data/properties.parquet``)
    or a CSV in the same schema; None reads i-Melt's HDF5 files and validates them (slower: it
    imports the ingest module and torch).
    """
    if path is None:
        from vitriflow.surrogates.viscosity.data import load_imelt, validate

        df, _ = validate(load_imelt(properties=tuple(properties)))
        return df.reset_index(drop=True)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: measured-property table not found")
    df = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected the tidy i-Melt schema "
                         f"with {list(_REQUIRED)}")
    return df[df["property"].isin(list(properties))].reset_index(drop=True)


def oxide_vector(composition) -> tuple[np.ndarray, float]:
    """(mole fractions in i-Melt oxide order ``OXIDES``, total fraction of other units)."""
    from pymatgen.core import Composition

    x = np.zeros(len(OXIDES))
    other = 0.0
    for unit, f in oxide_fractions(composition, where="experiment").items():
        key = _OXIDE_FORMULA.get(Composition(unit).reduced_formula)
        if key is None:
            other += f
        else:
            x[OXIDES.index(key)] += f
    return x, other


def composition_distance(x: np.ndarray, table: pd.DataFrame | np.ndarray, other: float = 0.0,
                         metric: str = "max") -> np.ndarray:
    """Distance of composition ``x`` (``OXIDES`` order) to every row of ``table``."""
    y = table.loc[:, list(OXIDES)].to_numpy(dtype=float) if isinstance(table, pd.DataFrame) \
        else np.asarray(table, dtype=float)
    diff = np.abs(y - np.asarray(x, dtype=float)[None, :])
    if metric == "max":
        return np.maximum(diff.max(axis=1), other)
    if metric == "l1half":
        return 0.5 * (diff.sum(axis=1) + other)
    raise ValueError(f"composition_distance: metric={metric!r}; expected 'max' or 'l1half'")


def match_rows(composition, measured: pd.DataFrame, tol: float = DEFAULT_TOL,
               metric: str = "max") -> pd.DataFrame:
    """The measurement rows within ``tol`` of ``composition``, with a ``distance`` column.

    Refractive-index rows away from the sodium D line are dropped first.
    """
    if not tol >= 0:
        raise ValueError(f"match_rows: tol={tol}; expected a mole-fraction tolerance >= 0")
    x, other = oxide_vector(composition)
    keep = np.ones(len(measured), dtype=bool)
    if "wavelength_um" in measured:
        ri = (measured["property"] == "refractive_index").to_numpy()
        near = (np.abs(measured["wavelength_um"].astype(float) - RI_WAVELENGTH_UM)
                <= RI_WAVELENGTH_TOL_UM).to_numpy()
        keep &= ~ri | near
    d = composition_distance(x, measured, other, metric)
    sel = keep & (d <= tol + 1e-12)
    return measured.loc[sel].assign(distance=d[sel]).reset_index(drop=True)


def is_pure_silica(composition, tol: float = 1e-6) -> bool:
    x, other = oxide_vector(composition)
    return other <= tol and x[OXIDES.index("sio2")] >= 1.0 - tol


def measured_properties(composition, measured: pd.DataFrame, tol: float = DEFAULT_TOL,
                        metric: str = "max",
                        properties: Iterable[str] = MEASURED_PROPERTIES) -> pd.DataFrame:
    """Per property: measured mean, std (ddof=1), n, min/max and the match distances.

    One row per requested property (``exp_n`` = 0 and NaN values where nothing matches),
    ``source`` "imelt"; for pure silica, rows of ``VITREOUS_SILICA`` follow with
    ``source`` naming the reference (``exp_n`` = 1, distance 0).
    """
    rows = match_rows(composition, measured, tol, metric)
    out = []
    for prop in properties:
        r = rows[rows["property"] == prop]
        v = r["value"].to_numpy(dtype=float)
        units = measured.loc[measured["property"] == prop, "unit"] if "unit" in measured else []
        unit = str(units.iloc[0]) if len(units) else ""
        out.append({
            "property": prop, "unit": unit, "source": "imelt",
            "exp_mean": float(v.mean()) if v.size else np.nan,
            "exp_std": float(v.std(ddof=1)) if v.size > 1 else np.nan,
            "exp_n": int(v.size),
            "exp_min": float(v.min()) if v.size else np.nan,
            "exp_max": float(v.max()) if v.size else np.nan,
            "distance_min": float(r["distance"].min()) if v.size else np.nan,
            "distance_max": float(r["distance"].max()) if v.size else np.nan,
            "metric": metric, "tol": float(tol),
        })
    if is_pure_silica(composition):
        for prop, (value, unit) in VITREOUS_SILICA.items():
            out.append({"property": prop, "unit": unit, "source": SILICA_SOURCE,
                        "exp_mean": value, "exp_std": np.nan, "exp_n": 1, "exp_min": value,
                        "exp_max": value, "distance_min": 0.0, "distance_max": 0.0,
                        "metric": metric, "tol": float(tol)})
    return pd.DataFrame(out, columns=MEASURED_COLUMNS)


def measured_table(compositions: Mapping[str, object], measured: pd.DataFrame,
                   tol: float = DEFAULT_TOL, metric: str = "max",
                   properties: Iterable[str] = MEASURED_PROPERTIES) -> pd.DataFrame:
    """``measured_properties`` for {label: composition}, stacked with a ``composition`` column."""
    props = tuple(properties)
    frames = [measured_properties(c, measured, tol, metric, props).assign(composition=label)
              for label, c in compositions.items()]
    if not frames:
        return pd.DataFrame(columns=["composition", *MEASURED_COLUMNS])
    df = pd.concat(frames, ignore_index=True)
    return df[["composition", *MEASURED_COLUMNS]]


PARITY_COLUMNS = ["composition", "property", "potential", "md_mean", "md_std", "n_replicas",
                  "exp_value", "exp_n", "exp_source", "error", "rel_error"]


def parity_table(md_rows: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """Long MD-vs-experiment table, one row per (composition, property, potential, source).

    ``md_rows``: either one row per replica (composition, property, potential, value) or
    already aggregated (composition, property, potential, md_mean, md_std, n_replicas).
    ``measured``: ``measured_table`` output (composition, property, exp_mean, exp_n[, source]).
    MD rows without a measurement keep NaN experiment columns; measured rows with
    ``exp_n`` = 0 are ignored. error = md_mean - exp_value; rel_error = error / exp_value.
    """
    keys = ["composition", "property", "potential"]
    missing = [c for c in keys if c not in md_rows.columns]
    if missing:
        raise ValueError(f"parity_table: md_rows lacks column(s) {missing}; expected {keys} + "
                         "value (per replica) or md_mean, md_std, n_replicas")
    if "value" in md_rows.columns:
        md = (md_rows.groupby(keys, sort=True)["value"]
              .agg(md_mean="mean", md_std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan,
                   n_replicas="count").reset_index())
    elif {"md_mean", "md_std", "n_replicas"} <= set(md_rows.columns):
        md = md_rows[[*keys, "md_mean", "md_std", "n_replicas"]].copy()
    else:
        raise ValueError("parity_table: md_rows needs a 'value' column (one row per replica) or "
                         "md_mean, md_std and n_replicas")
    need = ["composition", "property", "exp_mean", "exp_n"]
    missing = [c for c in need if c not in measured.columns]
    if missing:
        raise ValueError(f"parity_table: measured lacks column(s) {missing}; expected the "
                         "output of measured_table")
    exp = measured[measured["exp_n"] > 0]
    exp = exp.assign(exp_source=exp["source"] if "source" in exp else "")
    exp = exp[["composition", "property", "exp_mean", "exp_n", "exp_source"]].rename(
        columns={"exp_mean": "exp_value"})
    out = md.merge(exp, on=["composition", "property"], how="left")
    out["error"] = out["md_mean"] - out["exp_value"]
    out["rel_error"] = out["error"] / out["exp_value"]
    out["exp_n"] = out["exp_n"].fillna(0).astype(int)
    return out[PARITY_COLUMNS].reset_index(drop=True)


def spearman_tg(series: pd.DataFrame, md_col: str = "md_mean",
                exp_col: str = "exp_value") -> dict[str, float]:
    """Spearman rank correlation of MD and measured Tg across a composition series.

    ``series``: one row per composition (e.g. ``parity_table`` rows of one potential with
    property "tg"); a ``property`` column, if present, is filtered to "tg", and more than one
    potential is refused. Rows with a missing value are dropped. Returns rho, p_value, n
    (rho is NaN with fewer than 3 compositions or a constant series).
    """
    from scipy.stats import spearmanr

    df = series
    if "property" in df.columns:
        df = df[df["property"] == "tg"]
    if "potential" in df.columns and df["potential"].nunique() > 1:
        raise ValueError(f"spearman_tg: {df['potential'].nunique()} potentials in one series; "
                         "expected one (filter by potential first)")
    for c in (md_col, exp_col):
        if c not in df.columns:
            raise ValueError(f"spearman_tg: column {c!r} missing; expected {md_col!r} and "
                             f"{exp_col!r}")
    if "composition" in df.columns and df["composition"].duplicated().any():
        dup = df.loc[df["composition"].duplicated(), "composition"].unique().tolist()
        raise ValueError(f"spearman_tg: composition(s) {dup} appear more than once; expected one "
                         "row per composition (one measurement source)")
    d = df[[md_col, exp_col]].astype(float).dropna()
    n = len(d)
    if n < 3 or d[md_col].nunique() < 2 or d[exp_col].nunique() < 2:
        return {"rho": float("nan"), "p_value": float("nan"), "n": float(n)}
    res = spearmanr(d[md_col], d[exp_col])
    return {"rho": float(res.statistic), "p_value": float(res.pvalue), "n": float(n)}
