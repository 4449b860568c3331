"""Per composition: hull decomposition, volume per atom, formation energy and crystals, from the
first reference source that serves its chemical system."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from vitriflow.references.sources import (
    ReferenceError,
    ReferenceSet,
    _chemsys,
    element_volume_per_atom,
    estimate_reference_set,
    live_reference_set,
    open_live_client,
    snapshot_reference_set,
)

log = logging.getLogger("vitriflow.references")


# ----------------------------------------------------------------------------- per composition
def composition_reference(refs: ReferenceSet, comp: Composition,
                          e_above_hull_max: float = 0.05) -> dict:
    """Hull decomposition, volume per atom and formation energy of ``comp`` from ``refs``."""
    if refs.source == "estimate":
        fracs = comp.fractional_composition
        vpa = sum(fracs[el] * element_volume_per_atom(el.symbol) for el in fracs.elements)
        return {"volume_per_atom_A3": vpa, "formation_energy_per_atom_eV": float("nan"),
                "decomposition": json.dumps([]), "near_hull": json.dumps([])}
    pdg = refs.phase_diagram()
    decomp = pdg.get_decomposition(comp)
    vpa = 0.0
    parts = []
    for entry, frac in sorted(decomp.items(), key=lambda kv: -kv[1]):
        ref = refs.entries[entry.entry_id]
        vpa += frac * ref.volume_per_atom
        parts.append({"material_id": ref.material_id, "formula": ref.composition.reduced_formula,
                      "fraction": round(float(frac), 6)})
    near = []
    for pde in pdg.all_entries:
        if pde.composition.reduced_composition != comp.reduced_composition:
            continue
        e_hull = pdg.get_e_above_hull(pde)
        if e_hull is not None and e_hull <= e_above_hull_max:
            ref = refs.entries[pde.entry_id]
            near.append({"material_id": ref.material_id,
                         "e_above_hull_eV": round(float(e_hull), 4)})
    return {
        "volume_per_atom_A3": float(vpa),
        "formation_energy_per_atom_eV": float(pdg.get_hull_energy_per_atom(comp)),
        "decomposition": json.dumps(parts),
        "near_hull": json.dumps(near),
    }


def crystals_for(refs: ReferenceSet, decompositions: Iterable[str]) -> list:
    """ASE Atoms of every phase used in the decompositions plus the elemental references."""
    from pymatgen.io.ase import AseAtomsAdaptor

    wanted = {p["material_id"] for d in decompositions for p in json.loads(d)}
    out = []
    for ref in refs.entries:
        is_element = len(ref.composition.elements) == 1 and ref.formation_energy_per_atom == 0.0
        if ref.structure is None or not (ref.material_id in wanted or is_element):
            continue
        atoms = AseAtomsAdaptor.get_atoms(ref.structure)
        atoms.info.update({
            "material_id": ref.material_id, "formula": ref.composition.reduced_formula,
            "role": "element" if is_element else "phase",
            "mp_energy_per_atom_eV": float(ref.energy_per_atom),
            "mp_formation_energy_per_atom_eV": float(ref.formation_energy_per_atom),
            "source": refs.source,
        })
        out.append(atoms)
    return out


# ----------------------------------------------------------------------------- orchestration
def load_snapshot_index(path: str | os.PathLike | None) -> tuple[pd.DataFrame | None, str, str]:
    """The index written by the ``snapshot_index`` rule: (table or None when empty, version,
    label ``snapshot`` or ``subset``)."""
    if not path or not Path(path).is_file():
        return None, "", ""
    from vitriflow.io import read_table

    df, prov = read_table(path)
    if df.empty:
        return None, "", ""
    label = prov.get("index_source", "snapshot")
    version = f"{label} files sha256: " + ", ".join(
        f"{k}={v[:12]}" for k, v in sorted(prov.get("snapshot_checksums", {}).items()))
    return df, version, label


#: the sources tried, in order, for each value of references.source
SOURCE_ORDER = {"auto": ["live", "index", "estimate"], "live": ["live"], "snapshot": ["index"],
                "subset": ["index", "estimate"], "estimate": ["estimate"]}


def serve_references(
    compositions: Sequence, source: str = "auto", snapshot: pd.DataFrame | None = None,
    snapshot_version: str = "", e_above_hull_max: float = 0.05, client=None,
    snapshot_label: str = "snapshot",
) -> tuple[pd.DataFrame, list]:
    """Reference rows (one per composition) and crystal structures from the first serving source.

    ``compositions`` are ``GlassComposition`` objects. Each chemical system is served by the
    first source of ``SOURCE_ORDER[source]`` that works: the live API, the index (``snapshot``,
    the full Materials Project snapshot or the shipped subset, ``snapshot_label`` saying which),
    the estimate. The row records which source served it and its version. A source that cannot
    serve a chemical system falls through to the next (warning logged, API key masked); when
    the last one fails, a one-line ``ReferenceError``.
    """
    if source in ("auto", "live") and client is None:
        client = open_live_client()
        if client is None and source == "live":
            raise ReferenceError("references.source is 'live' but the Materials Project API is "
                                 "unavailable (MP_API_KEY not set or the API did not answer; the "
                                 "reason is logged above)")
    if source in ("snapshot", "subset") and snapshot is None:
        raise ReferenceError(f"references.source is {source!r} but the reference index is empty")
    order = SOURCE_ORDER[source]
    cache: dict[str, ReferenceSet] = {}
    rows, crystals, seen_ids = [], [], set()
    for idx, gc in enumerate(compositions):
        comp = gc.pymatgen
        chemsys = _chemsys(comp)
        if chemsys not in cache:
            cache[chemsys] = _first_source(chemsys.split("-"), source, order, snapshot,
                                           snapshot_version, snapshot_label, client)
        refs = cache[chemsys]
        info = composition_reference(refs, comp, e_above_hull_max)
        info["elemental_reference_energies"] = json.dumps(elemental_energies(refs))
        rows.append({"composition_index": idx, "label": gc.label, "formula": comp.reduced_formula,
                     "chemsys": chemsys, "source": refs.source,
                     "source_version": refs.source_version, **info})
        for atoms in crystals_for(refs, [info["decomposition"]]):
            if atoms.info["material_id"] not in seen_ids:
                seen_ids.add(atoms.info["material_id"])
                crystals.append(atoms)
    return pd.DataFrame(rows), crystals


def elemental_energies(refs: ReferenceSet) -> dict[str, float]:
    """Lowest known total energy per atom of each element's phases.

    MP-compatible energies; {} if unknown.
    """
    out: dict[str, float] = {}
    for e in refs.entries:
        if len(e.composition.elements) == 1 and np.isfinite(e.energy_per_atom):
            el = e.composition.elements[0].symbol
            out[el] = min(out.get(el, np.inf), float(e.energy_per_atom))
    return dict(sorted(out.items()))


def _first_source(elements, source, order, snapshot, snapshot_version, snapshot_label,
                  client) -> ReferenceSet:
    for name in order:
        try:
            if name == "live" and client is not None:
                return live_reference_set(elements, client)
            if name == "index" and snapshot is not None:
                return snapshot_reference_set(snapshot, elements, snapshot_version, snapshot_label)
            if name == "estimate":
                log.warning("references for %s: using the element-data ESTIMATE (no MP data)",
                            "-".join(elements))
                return estimate_reference_set(elements)
        except ReferenceError as exc:
            if name == order[-1]:
                raise ReferenceError(f"references.source is {source!r}: {exc}") from None
            log.warning("references for %s: %s source failed (%s); trying the next",
                        "-".join(elements), snapshot_label if name == "index" else name, exc)
    raise ReferenceError(
        f"references.source {source!r}: no source could serve {'-'.join(elements)}")
