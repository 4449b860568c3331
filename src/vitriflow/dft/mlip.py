"""MLIP single points on exactly the frames sent to DFT (amorphous, crystals, elements).

The amorphous energies are recomputed rather than read from the MD info so that the MLIP and
DFT energies belong to identical geometries; the MD value is kept beside it as a cross-check.
Models come from ``vitriflow.potentials.load_model`` (torch-sim ModelInterface).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger(__name__)


def resolve_potential(frames: Sequence[Atoms], name: str) -> str:
    """The potential to use: ``name``, or with 'from_structures' the one the MD stage used."""
    if name != "from_structures":
        return name
    used = sorted({str(a.info.get("md_potential", "")) for a in frames
                   if a.info.get("role") == "amorphous"} - {""})
    if len(used) != 1:
        raise ValueError("dft.mlip='from_structures': the selected structures used potentials "
                         f"{used}; set dft.mlip to one name")
    return used[0]


def mlip_energies(frames: Sequence[Atoms], potential: str, device: str = "cpu") -> pd.DataFrame:
    """Energies (eV) per frame; a model that cannot load marks every row 'failed'. The frames
    go through the model in one batch; if that batch fails, each frame is evaluated alone, so
    that one bad frame (a collapsed cell, a NaN position) fails only its own row."""
    ids = [str(a.info["structure_id"]) for a in frames]
    base = pd.DataFrame({"structure_id": ids, "n_atoms": [len(a) for a in frames],
                         "energy_eV": np.nan, "status": "failed", "reason": "",
                         "potential": potential})
    if not frames:
        return base
    try:
        import torch

        from vitriflow.potentials import load_model, single_points

        model = load_model(potential, device=device, dtype=torch.float64)
    except Exception as exc:  # the report states why; the DFT side still runs
        log.error("MLIP %s could not be loaded: %s: %s", potential, type(exc).__name__, exc)
        base["reason"] = f"MLIP {potential}: {type(exc).__name__}: {exc}"
        return base
    try:
        energies = np.asarray(single_points(model, list(frames)), dtype=float)
    except Exception as exc:
        log.warning("MLIP %s batch of %d frames failed (%s: %s); evaluating each frame alone",
                    potential, len(frames), type(exc).__name__, exc)
        energies = np.full(len(frames), np.nan)
        for i, a in enumerate(frames):
            try:
                energies[i] = float(single_points(model, [a])[0])
            except Exception as one:
                base.loc[i, "reason"] = f"MLIP {potential}: {type(one).__name__}: {one}"
                log.error("MLIP %s single point of %s failed: %s", potential, ids[i],
                          base.loc[i, "reason"])
    base["energy_eV"] = energies
    finite = np.isfinite(energies)
    base.loc[finite, "status"] = "ok"
    base.loc[~finite & (base["reason"] == ""), "reason"] = "non-finite MLIP energy"
    base["energy_per_atom_eV"] = base["energy_eV"] / base["n_atoms"]
    return base
