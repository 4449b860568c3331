"""Which structures go to DFT: a deterministic, composition-stratified pick per system.

Per system the selection holds
- ``amorphous``: up to ``n_per_system`` quenched structures, spread evenly over the compositions
  (evenly spaced composition indices first, then further replicas round-robin), with the order
  inside a composition fixed by a seeded shuffle, so the same inputs and seed give the same pick;
- optionally the neighbours (composition index +-1) of structures whose MD failed, and the failed
  structures themselves (their last good positions), to see whether DFT agrees that the region is
  hard;
- ``crystal``: the compound phases of the hull decomposition of every picked composition (from the
  references stage), for the amorphous-above-crystal energy;
- ``element``: one elemental reference per element, the reference solid from the references stage,
  or a diatomic molecule in a cubic box for H, N, O, F, Cl (the usual gaseous references).

Each frame carries ``info``: ``structure_id, system, role, formula, composition_index, label,
source_id, md_status, md_potential, md_energy_per_atom_eV, selected_because``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger(__name__)

#: elements whose reference state is a diatomic molecule (built with ASE's G2 geometries)
GAS_MOLECULES = {"H": "H2", "N": "N2", "O": "O2", "F": "F2", "Cl": "Cl2"}


def molecule_in_box(element: str, box_A: float) -> Atoms:
    """The diatomic reference molecule of ``element`` centred in a cubic periodic box."""
    from ase.build import molecule

    if element not in GAS_MOLECULES:
        raise ValueError(f"molecule_in_box: {element!r} has no gaseous reference; expected one of "
                         f"{sorted(GAS_MOLECULES)}")
    if box_A < 6.0:
        raise ValueError(f"dft.molecule_box_A: {box_A} Å is too small for a molecule; "
                         "expected >= 6")
    mol = molecule(GAS_MOLECULES[element])
    mol.set_cell([box_A] * 3)
    mol.center()
    mol.pbc = True
    return mol


def _order_for_stratification(indices: Sequence[int], n: int) -> list[int]:
    """Composition indices in visiting order: ``n`` evenly spaced ones first, the rest after."""
    idx = sorted(indices)
    if not idx:
        return []
    k = min(n, len(idx))
    first = sorted({idx[int(round(p))] for p in np.linspace(0, len(idx) - 1, k)}) if k else []
    rest = [i for i in idx if i not in set(first)]
    return first + rest


def select_amorphous(
    frames: Sequence[Atoms],
    n_per_system: int,
    seed: int,
    *,
    failure_neighbours: bool = False,
    include_failed: bool = False,
    max_atoms: int | None = None,
) -> list[tuple[Atoms, str]]:
    """Pick quenched structures (see module doc). Returns ``(atoms, selected_because)`` pairs."""
    if n_per_system < 0:
        raise ValueError(f"dft.n_per_system: expected >= 0, got {n_per_system}")
    rows = []
    for i, at in enumerate(frames):
        info = at.info
        for key in ("structure_id", "composition_index", "status"):
            if key not in info:
                raise ValueError(f"quenched frame {i}: info lacks {key!r} (see docs/CONTRACTS.md)")
        rows.append((i, str(info["structure_id"]), int(info["composition_index"]),
                     str(info["status"]), len(at)))
    df = pd.DataFrame(rows, columns=["frame", "structure_id", "ci", "status", "n_atoms"])
    if df["structure_id"].duplicated().any():
        dup = df.loc[df["structure_id"].duplicated(), "structure_id"].iloc[0]
        raise ValueError(f"quenched frames: duplicate structure_id {dup!r}")
    fits = df["n_atoms"] <= max_atoms if max_atoms else pd.Series(True, index=df.index)
    if (~fits).any():
        log.info("%d structures exceed dft.max_atoms=%s and are not eligible", int((~fits).sum()),
                 max_atoms)
    ok = df[(df["status"] == "ok") & fits]

    rng = np.random.default_rng(seed)
    by_comp: dict[int, list[int]] = {}
    for ci, group in ok.sort_values("structure_id").groupby("ci"):
        order = list(group["frame"])
        rng.shuffle(order)
        by_comp[int(ci)] = order

    picked: list[tuple[int, str]] = []
    comp_order = _order_for_stratification(list(by_comp), n_per_system)
    depth = 0
    while len(picked) < n_per_system and any(len(v) > depth for v in by_comp.values()):
        for ci in comp_order:
            if len(picked) >= n_per_system:
                break
            if len(by_comp[ci]) > depth:
                picked.append((by_comp[ci][depth], "stratified"))
        depth += 1

    chosen = {f for f, _ in picked}
    failed = df[(df["status"] != "ok") & fits].sort_values("structure_id")
    if failure_neighbours:
        for ci in sorted(set(failed["ci"])):
            for nb in (ci - 1, ci + 1):
                if nb in by_comp and by_comp[nb] and not chosen.intersection(by_comp[nb]):
                    f = by_comp[nb][0]
                    picked.append((f, f"neighbour of failed composition {ci}"))
                    chosen.add(f)
    if include_failed:
        for f in failed["frame"]:
            picked.append((int(f), "md failed"))
    return [(frames[f], why) for f, why in picked]


def _decomposition(ref_row: Mapping) -> list[dict]:
    raw = ref_row.get("decomposition")
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return []
    items = json.loads(raw) if isinstance(raw, str) else list(raw)
    return [dict(d) for d in items]


def build_selection(
    system: str,
    quenched: Sequence[Atoms],
    references: pd.DataFrame | None,
    crystals: Sequence[Atoms],
    *,
    n_per_system: int,
    seed: int,
    failure_neighbours: bool = False,
    include_failed: bool = False,
    include_crystals: bool = True,
    max_atoms: int | None = None,
    max_crystal_atoms: int | None = None,
    molecule_box_A: float = 10.0,
) -> tuple[list[Atoms], list[str]]:
    """All frames for DFT in one system (amorphous, crystals, elements) and a list of warnings."""
    warnings: list[str] = []
    out: list[Atoms] = []
    amorph = select_amorphous(
        quenched, n_per_system, seed, failure_neighbours=failure_neighbours,
        include_failed=include_failed, max_atoms=max_atoms,
    )
    elements: set[str] = set()
    comps: set[int] = set()
    for at, why in amorph:
        a = at.copy()
        info = at.info
        a.info = {
            "structure_id": str(info["structure_id"]), "system": system, "role": "amorphous",
            "formula": a.get_chemical_formula(mode="metal", empirical=True),
            "composition_index": int(info["composition_index"]),
            "label": str(info.get("label", "")), "source_id": str(info["structure_id"]),
            "md_status": str(info["status"]), "md_potential": str(info.get("potential", "")),
            "md_energy_per_atom_eV": float(info.get("energy_per_atom_eV", np.nan)),
            "selected_because": why,
        }
        a.info = _drop_empty(a.info)
        out.append(a)
        elements.update(a.get_chemical_symbols())
        comps.add(int(info["composition_index"]))

    by_id = {str(c.info.get("material_id")): c for c in crystals}
    if include_crystals and comps:
        if references is None or references.empty:
            warnings.append(f"{system}: no reference table; crystal energies (and ΔE_am) "
                            "unavailable")
        else:
            wanted: list[str] = []
            for _, row in references.sort_values("composition_index").iterrows():
                if int(row["composition_index"]) not in comps:
                    continue
                for d in _decomposition(row):
                    mid = str(d["material_id"])
                    if mid not in wanted:
                        wanted.append(mid)
            for mid in wanted:
                c = by_id.get(mid)
                if c is None:
                    warnings.append(f"{system}: decomposition phase {mid} not in the crystals file")
                    continue
                if len(set(c.get_chemical_symbols())) < 2:
                    continue  # elemental phases enter as element references
                if max_crystal_atoms and len(c) > max_crystal_atoms:
                    warnings.append(f"{system}: crystal {mid} has {len(c)} atoms "
                                    f"> dft.max_crystal_atoms={max_crystal_atoms}; skipped")
                    continue
                out.append(_tagged(c, system, "crystal", f"{system}-xtal-{mid}", mid, "hull phase"))
    for el in sorted(elements):
        if el in GAS_MOLECULES:
            mol = molecule_in_box(el, molecule_box_A)
            out.append(_tagged(mol, system, "element", f"{system}-el-{el}",
                               f"molecule:{GAS_MOLECULES[el]}",
                               f"reference for {el} (molecule in {molecule_box_A:g} Å box)"))
            continue
        cands = [c for c in crystals
                 if c.info.get("role") == "element" and set(c.get_chemical_symbols()) == {el}]
        if not cands:
            warnings.append(f"{system}: no elemental reference phase for {el} in the crystals file")
            continue
        best = _lowest_energy(cands)
        mid = str(best.info.get("material_id", el))
        out.append(_tagged(best, system, "element", f"{system}-el-{el}", mid,
                           f"reference for {el}"))
    return out, warnings


def _lowest_energy(cands: Sequence[Atoms]) -> Atoms:
    """The candidate with the lowest MP energy per atom (first by material_id when unknown)."""
    def key(c):
        e = c.info.get("mp_energy_per_atom_eV", np.nan)
        e = float(e) if e is not None else np.nan
        return (np.isnan(e), e if not np.isnan(e) else 0.0, str(c.info.get("material_id", "")))
    return sorted(cands, key=key)[0]


def _tagged(atoms: Atoms, system: str, role: str, sid: str, source: str, why: str) -> Atoms:
    """A crystal or elemental reference, carrying the Materials Project formation energy per
    atom (0 for elements) that the comparison fits each method's chemical potentials to."""
    a = atoms.copy()
    ef = (0.0 if role == "element"
          else float(atoms.info.get("mp_formation_energy_per_atom_eV", np.nan)))
    a.info = {
        "structure_id": sid, "system": system, "role": role,
        "formula": a.get_chemical_formula(mode="metal", empirical=True),
        "composition_index": -1, "label": "", "source_id": source, "md_status": "",
        "md_potential": "", "md_energy_per_atom_eV": np.nan, "selected_because": why,
        "reference_formation_energy_per_atom_eV": ef,
    }
    a.info = _drop_empty(a.info)
    return a


def _drop_empty(info: dict) -> dict:
    """Drop empty-string values: ASE's extxyz writer emits ``key=`` and its reader then swallows
    the next key into the value, so empty strings do not round-trip."""
    return {k: v for k, v in info.items() if not (isinstance(v, str) and v == "")}


def selection_table(frames: Sequence[Atoms]) -> pd.DataFrame:
    """One row per selected frame: its info plus ``n_atoms`` and ``composition`` (JSON counts)."""
    rows = []
    for a in frames:
        row = {"label": "", "md_status": "", "md_potential": "", **a.info}
        syms = a.get_chemical_symbols()
        row["n_atoms"] = len(a)
        row["composition"] = json.dumps({s: syms.count(s) for s in sorted(set(syms))})
        rows.append(row)
    return pd.DataFrame(rows)
