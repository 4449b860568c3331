"""Dissolution tables: reading (CSV, Parquet, the public Hamilton spreadsheet), validation with
one-line errors, row queries, and the descriptor frame the models learn from.

Descriptors: pH_acid = max(0, 7 - pH), pH_base = max(0, pH - 7), oxide mole fractions
``x_<Oxide>`` and the constraint counts of :mod:`.topology` (n_c, BS, BB, n_c_Si, n_c_Al, plus
f_NBO and n_SiOSi).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.surrogates.dissolution.topology import (
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
PH_RANGE = (0.0, 14.0)  # aqueous solutions; the Hamilton data span pH 1-12
#: headers of the public spreadsheet (m3rg-repo/machine_learning_glass dissolution/Data.xlsx,
#: dataset ``dissolution_hamilton``) -> the table's column names; its QSiO2 column holds log10
#: of the rate although the header does not say so (values -15.4 ... -10.1)
PUBLIC_HEADERS = {
    "Na2O": "Na2O_mol_pct", "Al2O3": "Al2O3_mol_pct", "SiO2": "SiO2_mol_pct",
    "Initial pH": "pH_initial", "pH at time t (Optional)": "pH_at_time_t",
    "QSiO2 (moles SiO2/cm2/s)": RATE_COLUMN,
}
TABLE_FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".xlsx": "Excel"}


class DissolutionDataError(ValueError):
    """Bad dissolution table or configuration (message names the file/key/value)."""


# ----------------------------------------------------------------------------- reading
def read_raw_table(path: str | Path, key: str = "dissolution.table") -> pd.DataFrame:
    """The table at ``path`` as read, public spreadsheet headers renamed; any file that is not
    a readable table of the expected format is refused in one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DissolutionDataError(f"{key}: {path} does not exist")
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DissolutionDataError(f"{key}: {path} has suffix {path.suffix!r}; expected one of "
                                   f"{', '.join(TABLE_FORMATS)}")
    if path.stat().st_size == 0:
        raise DissolutionDataError(f"{key}: {path} is empty")
    try:
        if kind == "CSV":
            df = pd.read_csv(path)
        elif kind == "Parquet":
            df = pd.read_parquet(path)
        else:  # the first sheet (the public file's two sheets are identical)
            df = pd.read_excel(path, sheet_name=0)
    except pd.errors.EmptyDataError:
        raise DissolutionDataError(f"{key}: {path} is empty") from None
    except Exception as exc:  # parsers raise many types for damaged or foreign files
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DissolutionDataError(
            f"{key}: {path} is not a readable {kind} table ({why})") from None
    return rename_public_headers(df)


def rename_public_headers(df: pd.DataFrame) -> pd.DataFrame:
    """Public spreadsheet headers (surrounding spaces ignored) -> the table's column names."""
    names = {}
    for c in df.columns:
        new = PUBLIC_HEADERS.get(str(c).strip())
        if new is not None and new not in df.columns:
            names[c] = new
    return df.rename(columns=names) if names else df


# ----------------------------------------------------------------------------- validation
def oxide_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(c, str) and c.endswith(OXIDE_SUFFIX)]


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def validate_table(df: pd.DataFrame, source: str, checks: Mapping[str, Any],
                   ph_measures: Sequence[str]) -> pd.DataFrame:
    """Check columns, units, oxide sums and ranges; returns a clean copy. One-line errors.

    ``checks`` is the section's ``checks`` (oxide_sum_tolerance, ph_range, log10_rate_range);
    ``ph_measures`` says which pH columns must be present and valid: pH_initial always (it
    defines the groups), pH_at_time_t only when ``at_time_t`` is asked for. Rows count from 2,
    the header being row 1, as a spreadsheet shows them."""
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
                near = [c for c in df.columns
                        if "rate" in str(c).lower() or str(c).lower().startswith(("log", "q"))]
                if near:
                    hint = (f" (found {near}; the rate must be log10 of mol SiO2 cm^-2 s^-1 "
                            "under this name)")
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
        bad = vals.isna()  # an infinite value fails the range checks below
        if bad.any():
            i = _first(bad)
            raw = df[col].iloc[i]
            if pd.isna(raw) or not str(raw).strip():
                what = "empty, expected a number"
            else:
                what = f"{raw!r} is not a number"
            raise DissolutionDataError(f"{source}: column {col!r} row {i + 2}: {what}")
        out[col] = vals.astype(float)
    tol = float(checks["oxide_sum_tolerance"])
    for col in ox:
        bad = (out[col] < 0) | (out[col] > 100)
        if bad.any():
            i = _first(bad)
            raise DissolutionDataError(
                f"{source}: {col} row {i + 2} = {out[col].iloc[i]}, expected mol % in [0, 100]"
            )
    sums = out[ox].sum(axis=1)
    off = (sums - 100).abs() > tol
    if off.any():
        i = _first(off)
        raise DissolutionDataError(
            f"{source}: oxides in row {i + 2} sum to {sums.iloc[i]:.4g} mol %, expected 100 "
            f"+/- {tol} (are they wt %? convert to mol %)"
        )
    lo, hi = checks["ph_range"]
    for col in ph_cols:
        bad = (out[col] < lo) | (out[col] > hi)
        if bad.any():
            i = _first(bad)
            raise DissolutionDataError(
                f"{source}: {col} row {i + 2} = {out[col].iloc[i]}, expected pH in [{lo}, {hi}]"
            )
    r = out[RATE_COLUMN]
    rlo, rhi = checks["log10_rate_range"]
    bad = (r < rlo) | (r > rhi)
    if bad.any():
        i = _first(bad)
        raise DissolutionDataError(
            f"{source}: {RATE_COLUMN} row {i + 2} = {r.iloc[i]:.4g}, expected log10 of a rate in "
            f"{RATE_UNIT} within [{rlo}, {rhi}] (a linear rate or another unit?)"
        )
    n_dup = int(out.duplicated().sum())
    if n_dup:  # kept: a copy-paste slip and a true repeat look the same, and the user must decide
        log.warning("%s: %d row(s) repeat an earlier row exactly; kept, each counts as a "
                    "measurement", source, n_dup)
    return out


def row_condition(view: pd.DataFrame, query: str, key: str) -> np.ndarray:
    """Boolean row mask of a pandas query; anything else (``Na2O = 25`` assigns a column, and
    its 2-D result used as a mask would duplicate rows) is refused naming the key."""
    try:
        keep = view.eval(query, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise DissolutionDataError(f"{key}: cannot evaluate {query!r}: {exc}") from exc
    keep = np.asarray(keep)
    if keep.shape != (len(view),) or keep.dtype != bool:
        raise DissolutionDataError(f"{key}: {query!r} is not a condition on the rows; expected "
                                   "e.g. 'Na2O == 25' or 'Al2O3 > 0'")
    return keep


def load_table(path: str | Path, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Read and validate the dissolution table of section ``cfg`` (its ``checks`` and
    ``ph_measures``) and apply its ``select``, a pandas query over oxide names in mol % and the
    pH and rate columns, e.g. ``"Al2O3 > 0"``."""
    df = validate_table(read_raw_table(path), str(path), cfg["checks"], cfg["ph_measures"])
    select = cfg["select"]
    if select:
        df = df[row_condition(_oxide_view(df), select, "dissolution.select")].reset_index(drop=True)
        if df.empty:
            raise DissolutionDataError(f"dissolution.select: {select!r} keeps no rows of {path}")
    return df


def _oxide_view(df: pd.DataFrame) -> pd.DataFrame:
    """Columns renamed to bare oxide names (Na2O, ...) so that queries read naturally."""
    return df.rename(columns={c: c[: -len(OXIDE_SUFFIX)] for c in oxide_columns(df)})


# ----------------------------------------------------------------------------- descriptors
def glass_label(row: Mapping[str, float], oxides: Sequence[str]) -> str:
    return "-".join(f"{row[c]:.4g}{c[: -len(OXIDE_SUFFIX)]}" for c in oxides if row[c] > 0)


def ph_branches(ph) -> tuple[np.ndarray, np.ndarray]:
    """pH_acid = max(0, 7 - pH), pH_base = max(0, pH - 7): both zero at pH 7 exactly."""
    ph = np.asarray(ph, dtype=float)
    return np.maximum(0.0, 7.0 - ph), np.maximum(0.0, ph - 7.0)


def describe(df: pd.DataFrame, ph_measure: str = "initial") -> pd.DataFrame:
    """Descriptor frame: glass/group ids, pH features, oxide fractions, constraint counts,
    target."""
    if ph_measure not in PH_COLUMNS:
        raise DissolutionDataError(f"dissolution.ph_measure: {ph_measure!r}, expected one of "
                                   f"{list(PH_COLUMNS)}")
    ph_col = PH_COLUMNS[ph_measure]
    if ph_col not in df:
        raise DissolutionDataError(f"dissolution table: pH measure {ph_measure!r} needs column "
                                   f"{ph_col!r}")
    ox = oxide_columns(df)
    comp = df[ox].round(3)
    glass = comp.apply(lambda r: glass_label(r, ox), axis=1)
    topo = {}
    for label, row in zip(glass, comp.to_dict("records"), strict=True):
        if label not in topo:
            try:
                topo[label] = count_constraints(
                    {c[: -len(OXIDE_SUFFIX)]: v for c, v in row.items()}, label)
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


def composition_descriptors(composition: Mapping[str, float], ph,
                            what: str = "input") -> pd.DataFrame:
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


def frames_by_ph_measure(descriptors: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The per-pH-measure descriptor frames of a ``descriptors`` table (its ``ph_measure``
    column dropped), in the table's order."""
    return {k: f.drop(columns="ph_measure").reset_index(drop=True)
            for k, f in descriptors.groupby("ph_measure", sort=False)}
