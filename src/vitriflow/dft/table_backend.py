"""User-supplied DFT energies (CSV or Parquet) keyed by structure id, for groups with their own DFT.

Required columns: ``structure_id`` and ``energy_eV`` (total, eV) or ``energy_per_atom_eV``.
Optional: ``status`` (``ok`` | ``failed``; default ``ok``), ``reason``, ``n_atoms`` (checked
against the selection). Ids must be those of the selection
(``results/dft/{system}/selection.parquet``: amorphous ids, ``{system}-xtal-<mp-id>``,
``{system}-el-<El>``); an id the selection does not know is refused, because a typo would otherwise
silently drop a structure. Selected ids without a row are reported as ``missing``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


def read_energy_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet energy table (by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dft.table.path: {path} does not exist")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path, comment="#")
    raise ValueError(f"dft.table.path: {path} must end in .csv or .parquet")


def energies_from_table(table: pd.DataFrame, selection: pd.DataFrame,
                        source: str = "table") -> pd.DataFrame:
    """Validate ``table`` against ``selection`` and return one energy row per selected structure."""
    if "structure_id" not in table.columns:
        raise ValueError(f"{source}: missing column 'structure_id' (columns: "
                         f"{list(table.columns)})")
    if "energy_eV" not in table.columns and "energy_per_atom_eV" not in table.columns:
        raise ValueError(f"{source}: needs a column 'energy_eV' or 'energy_per_atom_eV'")
    t = table.copy()
    t["structure_id"] = t["structure_id"].astype(str)
    dup = t["structure_id"][t["structure_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{source}: structure_id {dup.iloc[0]!r} appears more than once")
    known = set(selection["structure_id"].astype(str))
    unknown = sorted(set(t["structure_id"]) - known)
    if unknown:
        raise ValueError(f"{source}: unknown structure_id {unknown[0]!r} ({len(unknown)} unknown); "
                         "expected ids of the selection")
    t["status"] = t["status"].astype(str) if "status" in t else "ok"
    bad_status = sorted(set(t["status"]) - {"ok", "failed"})
    if bad_status:
        raise ValueError(f"{source}: status {bad_status[0]!r}; expected 'ok' or 'failed'")
    n_sel = selection.set_index(selection["structure_id"].astype(str))["n_atoms"].astype(int)
    t["n_sel"] = t["structure_id"].map(n_sel)
    if "n_atoms" in t:
        wrong = t[t["n_atoms"].astype(int) != t["n_sel"]]
        if len(wrong):
            r = wrong.iloc[0]
            raise ValueError(f"{source}: {r['structure_id']} has n_atoms={r['n_atoms']}, the "
                             f"selection has {r['n_sel']}")
    for col in ("energy_eV", "energy_per_atom_eV"):
        if col in t:
            t[col] = pd.to_numeric(t[col], errors="raise")
    if "energy_eV" not in t:
        t["energy_eV"] = t["energy_per_atom_eV"] * t["n_sel"]
    elif "energy_per_atom_eV" in t:
        both = t["energy_eV"].notna() & t["energy_per_atom_eV"].notna()
        diff = (t.loc[both, "energy_eV"] / t.loc[both, "n_sel"]
                - t.loc[both, "energy_per_atom_eV"]).abs()
        if (diff > 1e-6).any():
            sid = t.loc[both].loc[diff > 1e-6, "structure_id"].iloc[0]
            raise ValueError(f"{source}: {sid}: energy_eV / n_atoms disagrees with "
                             "energy_per_atom_eV")
    ok_nan = (t["status"] == "ok") & ~np.isfinite(t["energy_eV"])
    if ok_nan.any():
        raise ValueError(f"{source}: {t.loc[ok_nan, 'structure_id'].iloc[0]} has status 'ok' but "
                         "no finite energy")
    t["reason"] = t["reason"].fillna("").astype(str) if "reason" in t else ""
    out = selection[["structure_id", "n_atoms"]].astype({"structure_id": str}).merge(
        t[["structure_id", "energy_eV", "status", "reason"]], on="structure_id", how="left")
    missing = out["status"].isna()
    out.loc[missing, "status"] = "missing"
    out.loc[missing, "reason"] = f"no row in {source}"
    out["energy_per_atom_eV"] = out["energy_eV"] / out["n_atoms"]
    return out
