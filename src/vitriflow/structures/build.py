"""From a system's compositions and references to packed starting cells (one job's worth)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from vitriflow.composition import GlassComposition, cell_stoichiometry
from vitriflow.config import SystemSpec
from vitriflow.structures.ids import structure_id, structure_seed
from vitriflow.structures.packing import PackingRequest, density_g_cm3, pack


def target_volume_per_atom(comp: GlassComposition, ref, packing: Mapping) -> tuple[float, str]:
    """(Å³ per atom, where it came from) of a starting cell.

    An oxide glass that ``vitriflow.glass_density`` covers is packed at the model's room-
    temperature glass density (``glass_density_model``, with ``(extrapolated)`` beyond the
    oxide fractions it was fitted on); any other composition at its reference crystal's
    (hull-weighted) volume per atom x ``packing.density_scale`` (Aykol et al.), labelled with the
    source that served the crystal (``live``, ``snapshot``, ``subset`` or ``estimate``).
    """
    from vitriflow import glass_density

    oxides = comp.fractions
    if packing["glass_density_model"] and comp.is_oxide_mixture() and glass_density.covers(oxides):
        extrapolated = "" if glass_density.within_calibration(oxides) else " (extrapolated)"
        return glass_density.volume_per_atom_A3(oxides), f"glass_density_model{extrapolated}"
    return float(ref["volume_per_atom_A3"]) * packing["density_scale"], str(ref["source"])


def build_structures(spec: SystemSpec, refs: pd.DataFrame, packing: Mapping, seed: int):
    """Packed cells for every (composition, replica) and the per-composition table, which
    records the target volume per atom and its source (``target_volume_per_atom``)."""
    comps = spec.compositions()
    refs = refs.set_index("composition_index")
    requests, rows = [], []
    for ci, comp in enumerate(comps):
        counts = cell_stoichiometry(comp, spec.atoms_per_cell, where=f"{spec.where}.atoms_per_cell")
        vpa, volume_source = target_volume_per_atom(comp, refs.loc[ci], packing)
        row = {"composition_index": ci, "label": comp.label, "formula": comp.reduced_formula,
               "n_atoms": sum(counts.values()), "volume_per_atom_A3": vpa,
               "volume_source": volume_source, "counts": str(counts)}
        row.update({f"x_{el}": x for el, x in comp.element_fractions().items()})
        if comp.is_oxide_mixture():
            row.update({f"oxide_{u}": x for u, x in comp.units})
        for r in range(spec.replicas):
            sid = structure_id(spec.name, ci, r)
            info = {"structure_id": sid, "system": spec.name, "label": comp.label,
                    "formula": comp.reduced_formula, "composition_index": ci, "replica": r,
                    "target_volume_per_atom_A3": round(vpa, 5), "volume_source": volume_source}
            requests.append(PackingRequest(counts, vpa, structure_seed(seed, spec.name, ci, r),
                                           info))
        rows.append(row)
    atoms = pack(requests, packing["min_distance_scale"], packing["max_steps"])
    table = pd.DataFrame(rows)
    dens = {a.info["composition_index"]: density_g_cm3(a) for a in atoms}
    table["target_density_g_cm3"] = table["composition_index"].map(dens)
    return atoms, table.fillna({c: 0.0 for c in table.columns if c.startswith(("x_", "oxide_"))})
