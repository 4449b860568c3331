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
def composition_reference(refs: ReferenceSet, comp: Composition, e_above_hull_max: float = 0.05) -> dict:
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
            near.append({"material_id": ref.material_id, "e_above_hull_eV": round(float(e_hull), 4)})
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
def load_snapshot_index(path: str | os.PathLike | None) -> tuple[pd.DataFrame | None, str]:
    """Read the snapshot index written by the ``snapshot_index`` rule (None when absent)."""
    if not path or not Path(path).is_file():
        return None, ""
    from vitriflow.io import read_table

    df, prov = read_table(path)
    if df.empty:
        return None, ""
    version = "snapshot files sha256: " + ", ".join(
        f"{k}={v[:12]}" for k, v in sorted(prov.get("snapshot_checksums", {}).items()))
    return df, version


def serve_references(
    compositions: Sequence, source: str = "auto", snapshot: pd.DataFrame | None = None,
    snapshot_version: str = "", e_above_hull_max: float = 0.05, client=None,
    on_missing_snapshot: str = "error",
) -> tuple[pd.DataFrame, list]:
    """Reference rows (one per composition) and crystal structures, from the first source that serves.

    ``compositions`` are ``GlassComposition`` objects. Each chemical system is served by the
    first of live -> snapshot -> estimate that works (``source`` can force one); the row records
    which source served it and its version. Under ``auto`` a failed live query falls through
    (warning logged, API key masked); a forced source that fails raises a one-line
    ``ReferenceError``. ``source: snapshot`` without a snapshot (``snapshot`` None) uses the
    estimate when ``on_missing_snapshot`` is ``fallback`` (warning logged, rows labelled
    ``estimate``) and raises otherwise.
    """
    if source in ("auto", "live") and client is None:
        client = open_live_client()
        if client is None and source == "live":
            raise ReferenceError("references.source is 'live' but the Materials Project API is unavailable "
                                 "(MP_API_KEY not set or the API did not answer; the reason is logged above)")
    order = {"auto": ["live", "snapshot", "estimate"], "live": ["live"],
             "snapshot": ["snapshot"], "estimate": ["estimate"]}[source]
    if source == "snapshot" and snapshot is None:
        if on_missing_snapshot != "fallback":
            raise ReferenceError("references.source is 'snapshot' but the snapshot index is empty "
                                 "(references.snapshot_dir absent or incomplete; on_missing_snapshot is 'error')")
        log.warning("references.source is 'snapshot' but no snapshot is available; on_missing_snapshot is "
                    "'fallback': every system uses the element-data ESTIMATE")
        order = ["estimate"]
    cache: dict[str, ReferenceSet] = {}
    rows, crystals, seen_ids = [], [], set()
    for idx, gc in enumerate(compositions):
        comp = gc.pymatgen
        chemsys = _chemsys(comp)
        if chemsys not in cache:
            cache[chemsys] = _first_source(chemsys.split("-"), source, order, snapshot, snapshot_version, client)
        refs = cache[chemsys]
        info = composition_reference(refs, comp, e_above_hull_max)
        info["elemental_reference_energies"] = json.dumps(elemental_energies(refs))
        rows.append({"composition_index": idx, "label": gc.label, "formula": comp.reduced_formula,
                     "chemsys": chemsys, "source": refs.source, "source_version": refs.source_version,
                     **info})
        for atoms in crystals_for(refs, [info["decomposition"]]):
            if atoms.info["material_id"] not in seen_ids:
                seen_ids.add(atoms.info["material_id"])
                crystals.append(atoms)
    return pd.DataFrame(rows), crystals


def elemental_energies(refs: ReferenceSet) -> dict[str, float]:
    """Lowest known total energy per atom of each element's phases (MP-compatible; {} if unknown)."""
    out: dict[str, float] = {}
    for e in refs.entries:
        if len(e.composition.elements) == 1 and np.isfinite(e.energy_per_atom):
            el = e.composition.elements[0].symbol
            out[el] = min(out.get(el, np.inf), float(e.energy_per_atom))
    return dict(sorted(out.items()))


def _first_source(elements, source, order, snapshot, snapshot_version, client) -> ReferenceSet:
    for name in order:
        try:
            if name == "live" and client is not None:
                return live_reference_set(elements, client)
            if name == "snapshot" and snapshot is not None:
                return snapshot_reference_set(snapshot, elements, snapshot_version)
            if name == "estimate":
                log.warning("references for %s: using the element-data ESTIMATE (no MP data)", "-".join(elements))
                return estimate_reference_set(elements)
        except ReferenceError as exc:
            if source != "auto":
                raise ReferenceError(f"references.source is {source!r}: {exc}") from None
            log.warning("references for %s: %s source failed (%s); trying the next", "-".join(elements), name, exc)
    raise ReferenceError(f"references.source {source!r}: no source could serve {'-'.join(elements)}")
