"""Elemental reference energies computed with the same potential as the amorphous cells.

Formation energies of MLIP-quenched structures are taken against the potential's own relaxed
elemental phases (the reference crystals from ingestion, role ``element``), so that systematic
errors of the potential cancel as they do in DFT. Classical pair potentials have no elemental
phases (Si metal under BKS is meaningless): they get ``None`` with that reason.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from vitriflow.potentials import is_mlip, load_model

log = logging.getLogger("vitriflow.md_refs")


def elemental_reference_energies(crystals, potential: str, device: str = "cpu",
                                 dtype: torch.dtype = torch.float64, fmax: float = 0.02,
                                 max_steps: int = 200) -> dict:
    """{potential, energies_per_atom {El: eV/atom} | None, material_ids, failed {id: why}, reason}.

    A polymorph that cannot be relaxed is dropped with its reason (``failed``); its element keeps
    any other polymorph, else has no reference and its formation energies say so."""
    if not is_mlip(potential):
        return {"potential": potential, "energies_per_atom": None, "material_ids": {},
                "reason": "classical pair potential: no elemental reference phases"}
    elements = [a for a in crystals if a.info.get("role") == "element"]
    if not elements:
        return {"potential": potential, "energies_per_atom": None, "material_ids": {},
                "reason": "no elemental reference structures (estimate source)"}
    import torch_sim as ts

    from vitriflow.md.engine import fire_relax

    model = load_model(potential, device=device, dtype=dtype)
    # one polymorph the potential cannot relax must not cost the others their references
    _, energies, reasons = fire_relax(elements, model, device, fmax, max_steps,
                                 init_kwargs={"cell_filter": ts.CellFilter.frechet})
    best: dict[str, tuple[float, str]] = {}
    failed: dict[str, str] = {}
    for a, e, why in zip(elements, energies, reasons, strict=True):
        el, mid = a.get_chemical_symbols()[0], a.info.get("material_id", "")
        epa = float(e) / len(a)
        if why or not np.isfinite(epa):
            failed[mid or el] = why or "non-finite energy after relaxation"
            log.warning("%s reference %s dropped: %s", el, mid, failed[mid or el])
        elif el not in best or epa < best[el][0]:
            best[el] = (epa, mid)
    return {"potential": potential,
            "energies_per_atom": {el: v[0] for el, v in sorted(best.items())},
            "material_ids": {el: v[1] for el, v in sorted(best.items())}, "failed": failed,
            "reason": "" if best else "no elemental reference could be relaxed"}


def elemental_crystals(index, elements) -> list:
    """Lowest-energy elemental polymorphs from the snapshot index (empty without a snapshot)."""
    import json

    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    if index is None or index.empty:
        return []
    rows = index[(index["origin"] == "matcalc_element_refs")
                 & index["chemsys"].isin(list(elements))]
    out = []
    for rec in rows.itertuples():
        atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(json.loads(rec.structure_json)))
        atoms.info.update({"material_id": rec.material_id, "role": "element",
                           "formula": rec.formula})
        out.append(atoms)
    return out
