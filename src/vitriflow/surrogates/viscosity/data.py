"""The i-Melt NKCMAS database (PyPI ``imelt``) as one tidy, validated table (torch-free).

``imelt`` ships HDF5 files with fixed train/valid/test splits for each property; their X
matrices hold the six oxide mole fractions (sio2, al2o3, na2o, k2o, mgo, cao) followed by 33
descriptors derived from them. Here every measurement becomes one row:

    property, split, source, source_row, row_id, sio2..cao (mole fractions), T_K,
    wavelength_um, value, unit

Descriptors are dropped (they are recomputed from the oxides), temperatures are in K,
wavelengths in micrometres. ``validate`` checks every row (known property and split, fractions
in [0, 1] summing to 1, positive temperature/wavelength where the property needs one, finite
value) and returns the good rows and the rejected ones with a reason: bad rows are reported
and excluded, never kept. Users add data through CSV files in the same schema
(``read_user_csv``).

The Raman spectra (``NKCMAS_Raman.hdf5``: 850 channels, 400-1249 cm^-1, each spectrum
normalised to a maximum of 1) go to a second tidy table, one row per (spectrum, channel):
``load_imelt_raman`` / ``validate_raman`` / ``ingest_raman``. A spectrum is kept or rejected
as a whole.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.surrogates.viscosity.features import OXIDES

log = logging.getLogger("vitriflow.surrogates.viscosity.data")

# property name in the tidy table -> its unit, and the column a row of it needs
PROPERTIES: dict[str, dict] = {
    "viscosity": {"unit": "log10 Pa s", "needs": "T_K"},
    "tg": {"unit": "K"},
    "sconf_tg": {"unit": "J/mol/K"},
    "density": {"unit": "g/cm3"},
    "refractive_index": {"unit": "1", "needs": "wavelength_um"},
    "liquidus": {"unit": "K"},
    "elastic_modulus": {"unit": "GPa"},
    "cte": {"unit": "1e-6/K"},
    "abbe_number": {"unit": "1"},
    "cp_liquid": {"unit": "J/mol/K", "needs": "T_K"},
}


def target_name(prop: str, equation: str = "") -> str:
    """'viscosity:ag' for a viscosity equation, the property name otherwise."""
    return f"{prop}:{equation}" if equation else prop


SPLITS = ("train", "valid", "test")
COLUMNS = [
    "property",
    "split",
    "source",
    "source_row",
    "row_id",
    *OXIDES,
    "T_K",
    "wavelength_um",
    "value",
    "unit",
]
SUM_TOL = 1e-3

# property -> (file, X key stem, y key stem, T key stem, wavelength key stem, y column)
_LAYOUT = {
    "viscosity": ("NKCMAS_viscosity.hdf5", "X_{s}", "y_{s}", "T_{s}", None),
    "tg": ("NKCMAS_viscosity.hdf5", "X_tg_{s}", "y_tg_{s}", None, None),
    "sconf_tg": ("NKCMAS_viscosity.hdf5", "X_entropy_{s}", "y_entropy_{s}", None, None),
    "density": ("NKCMAS_density.hdf5", "X_density_{s}", "y_density_{s}", None, None),
    "refractive_index": ("NKCMAS_optical.hdf5", "X_ri_{s}", "y_ri_{s}", None, "lbd_ri_{s}"),
    "liquidus": ("NKCMAS_tl.hdf5", "X_liquidus_{s}", "y_liquidus_{s}", None, None),
    "elastic_modulus": ("NKCMAS_em.hdf5", "X_elastic_{s}", "y_elastic_{s}", None, None),
    "cte": ("NKCMAS_cte.hdf5", "X_cte_{s}", "y_cte_{s}", None, None),
    "abbe_number": ("NKCMAS_abbe.hdf5", "X_abbe_{s}", "y_abbe_{s}", None, None),
    "cp_liquid": ("NKCMAS_cp.hdf5", "X_cpl_{s}", "y_cpl_{s}", "T_cpl_{s}", None),
}

RAMAN_FILE = "NKCMAS_Raman.hdf5"
RAMAN_COLUMNS = [
    "split",
    "source",
    "source_row",
    "spectrum_id",
    *OXIDES,
    "wavenumber_cm1",
    "intensity",
]
RAMAN_SHIFT_CM1 = np.arange(400.0, 1250.0, 1.0)  # i-Melt's channel axis (imelt.data.x_raman_shift)


def imelt_data_dir() -> Path:
    """Folder of the HDF5 files shipped with the installed ``imelt`` package."""
    import imelt

    return Path(imelt.__file__).resolve().parent / "data"


def imelt_files(data_dir: str | os.PathLike | None = None) -> list[Path]:
    d = Path(data_dir) if data_dir else imelt_data_dir()
    return sorted({d / spec[0] for spec in _LAYOUT.values()})


def load_imelt(
    data_dir: str | os.PathLike | None = None, properties=tuple(_LAYOUT)
) -> pd.DataFrame:
    """Read the i-Melt HDF5 files into the tidy schema (no validation yet)."""
    import h5py

    d = Path(data_dir) if data_dir else imelt_data_dir()
    frames = []
    for prop in properties:
        if prop not in _LAYOUT:
            raise ValueError(
                f"load_imelt: unknown property {prop!r}; expected one of {sorted(_LAYOUT)}"
            )
        fname, xk, yk, tk, lk = _LAYOUT[prop]
        path = d / fname
        if not path.is_file():
            raise FileNotFoundError(f"{path}: i-Melt data file not found (is imelt installed?)")
        with h5py.File(path, "r") as h:
            for s in SPLITS:
                X = np.asarray(h[xk.format(s=s)][()], dtype=float)
                y = np.asarray(h[yk.format(s=s)][()], dtype=float)
                y = y[:, 0] if y.ndim == 2 else y
                fr = pd.DataFrame(X[:, :6], columns=list(OXIDES))
                fr.insert(0, "property", prop)
                fr.insert(1, "split", s)
                fr.insert(2, "source", f"imelt:{fname}")
                fr.insert(3, "source_row", np.arange(len(fr)))
                fr["T_K"] = np.asarray(h[tk.format(s=s)][()], float).reshape(-1) if tk else np.nan
                fr["wavelength_um"] = (
                    np.asarray(h[lk.format(s=s)][()], float).reshape(-1) if lk else np.nan
                )
                fr["value"] = y
                fr["unit"] = PROPERTIES[prop]["unit"]
                frames.append(fr)
    out = pd.concat(frames, ignore_index=True)
    out.insert(4, "row_id", np.arange(len(out), dtype=np.int64))
    return out[COLUMNS]


MAX_WAVELENGTH_UM = 20.0  # optical data reach the mid-infrared; larger numbers are nanometres


def read_user_csv(path: str | os.PathLike, first_row_id: int = 0) -> pd.DataFrame:
    """A user CSV in the tidy schema: property, split, oxides (fractions or mol%), value,
    and T_K / wavelength_um where the property needs them. Oxide rows are renormalised to 1
    only if they sum to ~100 (mol%); anything else is left for ``validate`` to judge."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: user data CSV not found")
    df = pd.read_csv(path)
    missing = [c for c in ("property", "split", *OXIDES, "value") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected the tidy schema {COLUMNS}")
    for c in ("T_K", "wavelength_um"):
        if c not in df:
            df[c] = np.nan
    ox = df.loc[:, list(OXIDES)].apply(pd.to_numeric, errors="coerce").astype(float)
    total = ox.sum(axis=1)
    pct = (total - 100.0).abs() < 100.0 * SUM_TOL
    ox.loc[pct] = ox.loc[pct].div(total[pct], axis=0)
    for o in OXIDES:
        df[o] = ox[o].astype(float)
    for c in ("T_K", "wavelength_um", "value"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["source"] = f"user:{path}"  # the path as configured: two folders may hold a data.csv each
    df["source_row"] = np.arange(len(df))
    df["row_id"] = np.arange(first_row_id, first_row_id + len(df), dtype=np.int64)
    if "unit" in df:
        bad_unit = [
            (i, u)
            for i, (p, u) in enumerate(zip(df["property"], df["unit"], strict=True))
            if p in PROPERTIES and str(u) != PROPERTIES[p]["unit"]
        ]
        if bad_unit:
            i, u = bad_unit[0]
            raise ValueError(
                f"{path}: row {i} unit {u!r} for {df['property'][i]!r}; expected "
                f"{PROPERTIES[df['property'][i]]['unit']!r}"
            )
    df["unit"] = [PROPERTIES.get(p, {}).get("unit", "") for p in df["property"]]
    return df[COLUMNS]


def _split_and_composition_checks(df: pd.DataFrame, tol: float) -> list[tuple[Any, str]]:
    ox = df.loc[:, list(OXIDES)].astype(float)
    return [
        (~df["split"].isin(list(SPLITS)), "split not in train/valid/test"),
        (~np.isfinite(ox).all(axis=1), "oxide fraction is NaN/inf"),
        (((ox < -tol) | (ox > 1 + tol)).any(axis=1), "oxide fraction outside [0, 1]"),
        ((ox.sum(axis=1) - 1.0).abs() > tol, f"oxide fractions do not sum to 1 (tol {tol})"),
    ]


def _first_reasons(df: pd.DataFrame, checks) -> pd.Series:
    """Per row, the first failed check's reason ('' if none); a NaN mask counts as failed."""
    reasons = pd.Series("", index=df.index, dtype=object)
    for mask, why in checks:
        mask = pd.Series(mask, index=df.index).fillna(True).astype(bool)
        reasons[mask & (reasons == "")] = why
    return reasons


def validate(df: pd.DataFrame, tol: float = SUM_TOL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into (good rows, rejected rows with a ``reason`` column)."""
    needs = df["property"].map(lambda p: PROPERTIES.get(p, {}).get("needs"))
    reasons = _first_reasons(
        df,
        [
            (~df["property"].isin(list(PROPERTIES)), "unknown property"),
            *_split_and_composition_checks(df, tol),
            (~np.isfinite(df["value"].astype(float)), "value is NaN/inf"),
            (
                (needs == "T_K") & ~(df["T_K"].astype(float) > 0),
                "temperature missing or not positive",
            ),
            (
                (needs == "wavelength_um") & ~(df["wavelength_um"].astype(float) > 0),
                "wavelength missing or not positive",
            ),
            (
                (needs == "wavelength_um")
                & (df["wavelength_um"].astype(float) > MAX_WAVELENGTH_UM),
                f"wavelength above {MAX_WAVELENGTH_UM:g} µm (given in nm? expected µm)",
            ),
        ],
    )
    bad = reasons != ""
    rejected = df.loc[bad].assign(reason=reasons[bad]).reset_index(drop=True)
    for (prop, why), n in rejected.groupby(["property", "reason"]).size().items():
        log.warning("rejected %d %s row(s): %s", n, prop, why)
    return df.loc[~bad].reset_index(drop=True), rejected


def _raman_path(data_dir) -> Path:
    return (Path(data_dir) if data_dir else imelt_data_dir()) / RAMAN_FILE


def load_imelt_raman(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read i-Melt's Raman spectra into the long Raman schema (no validation yet)."""
    import h5py

    path = _raman_path(data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: i-Melt Raman file not found (is imelt installed?)")
    frames, first = [], 0
    with h5py.File(path, "r") as h:
        for s in SPLITS:
            X = np.asarray(h[f"X_raman_{s}"][()], dtype=float)
            y = np.asarray(h[f"y_raman_{s}"][()], dtype=float)
            if y.shape[1] != RAMAN_SHIFT_CM1.size:
                raise ValueError(
                    f"{path}: y_raman_{s} has {y.shape[1]} channels; expected "
                    f"{RAMAN_SHIFT_CM1.size} (400-1249 cm^-1)"
                )
            n, m = y.shape
            fr = pd.DataFrame(np.repeat(X[:, :6], m, axis=0), columns=list(OXIDES))
            fr.insert(0, "split", s)
            fr.insert(1, "source", f"imelt:{RAMAN_FILE}")
            fr.insert(2, "source_row", np.repeat(np.arange(n), m))
            fr.insert(3, "spectrum_id", np.repeat(np.arange(first, first + n, dtype=np.int64), m))
            fr["wavenumber_cm1"] = np.tile(RAMAN_SHIFT_CM1, n)
            fr["intensity"] = y.reshape(-1)
            frames.append(fr)
            first += n
    return pd.concat(frames, ignore_index=True)[RAMAN_COLUMNS]


def validate_raman(df: pd.DataFrame, tol: float = SUM_TOL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(good rows, rejected spectra): one row per rejected spectrum with its first reason."""
    reason = _first_reasons(
        df,
        [
            *_split_and_composition_checks(df, tol),
            (~(df["wavenumber_cm1"].astype(float) > 0), "wavenumber missing or not positive"),
            (~np.isfinite(df["intensity"].astype(float)), "intensity is NaN/inf"),
        ],
    )
    bad_rows = df.assign(reason=reason)[reason != ""]
    rejected = (
        bad_rows.drop_duplicates("spectrum_id")
        .loc[:, ["spectrum_id", "split", "source", "source_row", *OXIDES, "reason"]]
        .reset_index(drop=True)
    )
    for why, n in rejected.groupby("reason").size().items():
        log.warning("rejected %d Raman spectrum/spectra: %s", n, why)
    good = df[~df["spectrum_id"].isin(rejected["spectrum_id"])].reset_index(drop=True)
    return good, rejected


def ingest_raman(data_dir: str | os.PathLike | None = None):
    """Load and validate i-Melt's Raman spectra; returns (good, rejected, provenance dict)."""
    from vitriflow.io import sha256_file

    raw = load_imelt_raman(data_dir)
    good, rejected = validate_raman(raw)
    path = _raman_path(data_dir)
    prov = {
        "source": "imelt NKCMAS Raman spectra",
        "imelt_version": metadata.version("imelt"),
        "files": {path.name: sha256_file(path)},
        "units": {"wavenumber_cm1": "cm^-1", "intensity": "normalised to max 1"},
        "n_spectra": int(raw["spectrum_id"].nunique()),
        "n_rejected": int(len(rejected)),
        "counts": {s: int(n) for s, n in good.groupby("split")["spectrum_id"].nunique().items()},
    }
    return good, rejected, prov


def _unusable(path, frame: pd.DataFrame, rejected: pd.DataFrame) -> str:
    """Why none of the rows of user file ``path`` is usable ('' when some are): a unit or format
    mistake, not a few bad measurements."""
    lost = rejected[rejected["source"] == frame["source"].iloc[0]] if len(frame) else frame
    if len(lost) < len(frame):
        return ""
    why = lost["reason"].value_counts().index[0] if len(lost) else "the file has no rows"
    return (
        f"{path}: none of its {len(frame)} rows is usable (most common reason: {why}); "
        f"expected the tidy schema {COLUMNS}"
    )


def check_user_csv(path: str | os.PathLike) -> tuple[int, int]:
    """(usable rows, rejected rows) of one user CSV; ValueError naming the file when it is
    missing, lacks a column, gives a wrong unit or has no usable row."""
    frame = read_user_csv(path)
    good, rejected = validate(frame)
    why = _unusable(path, frame, rejected)
    if why:
        raise ValueError(why)
    return len(good), len(rejected)


def ingest(user_csvs=(), data_dir: str | os.PathLike | None = None):
    """Load i-Melt + user CSVs, validate; returns (good, rejected, provenance dict)."""
    from vitriflow.io import sha256_file

    df = load_imelt(data_dir)
    frames = [df]
    for p in user_csvs:
        frames.append(read_user_csv(p, first_row_id=int(sum(len(f) for f in frames))))
    raw = pd.concat(frames, ignore_index=True)
    good, rejected = validate(raw)
    for p, frame in zip(user_csvs, frames[1:], strict=True):
        why = _unusable(p, frame, rejected)
        if why:
            raise ValueError(why)
    prov = {
        "source": "imelt NKCMAS database",
        "imelt_version": metadata.version("imelt"),
        "files": {
            **{f.name: sha256_file(f) for f in imelt_files(data_dir)},
            **{str(p): sha256_file(p) for p in user_csvs},
        },
        "units": {p: s["unit"] for p, s in PROPERTIES.items()},
        "n_rows": int(len(raw)),
        "n_rejected": int(len(rejected)),
        "counts": {
            f"{p}/{s}": int(n) for (p, s), n in good.groupby(["property", "split"]).size().items()
        },
    }
    return good, rejected, prov
