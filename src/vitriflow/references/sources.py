"""Materials Project crystal references: live API, snapshot, shipped subset, or labelled estimate.

For each composition we need the crystalline ground state the amorphous cell is compared with:
the hull decomposition (phases and fractions), its volume per atom (the packing density of
non-oxide cells, Aykol et al.: 1.15 x crystal volume), its formation energy, and the structures
themselves (for DFT/MLIP comparison). Sources, tried in order under ``source: auto``:

1. ``live``: ``mp_api.client.MPRester`` with ``MP_API_KEY`` (never logged or written);
2. ``snapshot``: the five Materials Project files of the dataset registry (``SNAPSHOT_DATASETS``),
   indexed by ``build_snapshot_index``;
3. ``subset``: ``data/materials_project_subset.parquet``, the same index cut to the chemistries of
   the shipped configs (``scripts/build-mp-subset``), so a clone without network or mirror still
   has real crystals, formation energies and elemental phases;
4. ``estimate``: composition-weighted elemental molar volumes from pymatgen's element data;
   no energies. Always labelled ``estimate`` in outputs and logs.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure

from vitriflow.io import sha256_file

log = logging.getLogger("vitriflow.references")
AVOGADRO = 6.02214076e23

#: role in the index -> dataset registry key (data/registry.yaml)
SNAPSHOT_DATASETS = {
    "flla": "mp_flla",
    "binary_structures": "mp_binary_structures",
    "formation": "mp_formation",
    "element_structures": "mp_element_structures",
    "element_entries": "mp_element_entries",
}
SUBSET_PATH = Path(__file__).resolve().parents[3] / "data" / "materials_project_subset.parquet"


class ReferenceError(RuntimeError):
    """A reference source that cannot serve (missing file, API failure)."""


@dataclass
class RefEntry:
    """One crystal: id, composition, formation energy (eV/atom, NaN if unknown), structure."""

    material_id: str
    composition: Composition
    formation_energy_per_atom: float
    volume_per_atom: float
    structure: Structure | None = None
    energy_per_atom: float = float("nan")  # total (MP-corrected) energy where known


@dataclass
class ReferenceSet:
    """All reference entries of one chemical system plus where they came from."""

    source: str
    source_version: str
    entries: list[RefEntry]

    def phase_diagram(self) -> PhaseDiagram:
        pd_entries = []
        for i, e in enumerate(self.entries):
            n = e.composition.num_atoms
            pde = PDEntry(e.composition, e.formation_energy_per_atom * n, name=e.material_id)
            pde.entry_id = i
            pd_entries.append(pde)
        return PhaseDiagram(pd_entries)


# ----------------------------------------------------------------------------- snapshot
def _chemsys(comp: Composition) -> str:
    return "-".join(sorted(el.symbol for el in comp.elements))


def _read_json(path: str | os.PathLike):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return json.load(fh)


def build_snapshot_index(
        files: Mapping[str, str | os.PathLike]) -> tuple[pd.DataFrame, dict[str, str]]:
    """One table of every crystal in the snapshot with structure, volume and formation energy.

    ``files`` maps each role of ``SNAPSHOT_DATASETS`` to its file (CSV files may be gzipped).
    Joins MP binary structures (matcalc) with MP formation energies (roost) by material id,
    adds the matminer FLLA set (structures + formation energies), and the lowest-energy
    elemental polymorphs (formation energy 0 by definition; higher polymorphs relative to it).
    Returns the table and the SHA-256 of every file used, by role.
    """
    missing = sorted(set(SNAPSHOT_DATASETS) - set(files))
    if missing:
        raise ReferenceError(f"Materials Project snapshot: no file for {missing}")
    checksums = {role: sha256_file(files[role]) for role in SNAPSHOT_DATASETS}
    rows = []

    flla = pd.read_csv(files["flla"], comment="#")
    for rec in flla.itertuples():
        s = Structure.from_dict(_literal(rec.structure))
        rows.append(_row(rec.material_id, s, rec.formation_energy_per_atom, "flla_2015"))

    formation = pd.read_csv(files["formation"])
    ef_by_id = dict(zip(formation.task_id, formation.formation_energy_per_atom, strict=True))
    binaries = _read_json(files["binary_structures"])
    seen = {r["material_id"] for r in rows}
    for rec in binaries:
        mid = rec["mp_id"]
        if mid in seen or mid not in ef_by_id:
            continue
        rows.append(_row(mid, Structure.from_dict(rec["structure"]), ef_by_id[mid],
                         "matcalc_binary+roost"))
        seen.add(mid)

    element_entries = _read_json(files["element_entries"])
    element_structures = _read_json(files["element_structures"])
    for el, rec in element_structures.items():
        energies = np.asarray(rec["energy_per_atom"], dtype=float)
        e_min = energies.min()
        best = int(energies.argmin())
        s = Structure.from_dict(rec["structure"][best])
        ref = element_entries.get(el, {})
        mp_epa = (float(ref["energy"]) / Composition(ref["composition"]).num_atoms
                  if ref else float("nan"))
        mid = ref.get("entry_id") or ref.get("data", {}).get("material_id") or f"element-{el}"
        row = _row(str(mid), s, 0.0, "matcalc_element_refs", mp_energy_per_atom=mp_epa)
        row["pbe_energy_per_atom"] = float(e_min)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table, checksums


def index_snapshot(files: Mapping[str, str | os.PathLike] | None,
                   note: str = "") -> tuple[pd.DataFrame, dict[str, Any]]:
    """What the ``snapshot_index`` rule writes: the full snapshot's index when ``files`` are
    given, else the shipped subset; and a provenance block saying which (``index_source``:
    ``snapshot`` or ``subset``), the checksums and ``note`` (why the subset, when it is)."""
    if files:
        table, checksums = build_snapshot_index(files)
        return table, {"index_source": "snapshot", "snapshot_checksums": checksums, "note": note}
    table = pd.read_parquet(SUBSET_PATH)
    return table, {"index_source": "subset",
                   "snapshot_checksums": {"subset": sha256_file(SUBSET_PATH)}, "note": note}


def _literal(text: str):
    import ast

    return ast.literal_eval(text)


def _row(mid: str, s: Structure, ef: float, origin: str,
         mp_energy_per_atom: float = float("nan")) -> dict:
    comp = s.composition
    return {
        "material_id": str(mid),
        "formula": comp.reduced_formula,
        "chemsys": _chemsys(comp),
        "n_elements": len(comp.elements),
        "formation_energy_per_atom": float(ef),
        "volume_per_atom": s.volume / comp.num_atoms,
        "mp_energy_per_atom": mp_energy_per_atom,
        "origin": origin,
        "structure_json": json.dumps(s.as_dict()),
    }


def snapshot_reference_set(index: pd.DataFrame, elements: Sequence[str], version: str,
                           label: str = "snapshot") -> ReferenceSet:
    """The index's entries inside the chemical system of ``elements`` (all subsystems);
    ``label`` (``snapshot`` or ``subset``) names the source in the outputs."""
    allowed = set(elements)
    sub = index[index["chemsys"].map(lambda cs: set(cs.split("-")) <= allowed)]
    missing = allowed - set(sub.loc[sub.n_elements == 1, "chemsys"])
    if missing:
        raise ReferenceError(f"{label} has no elemental reference for {sorted(missing)}")
    entries = []
    for rec in sub.itertuples():
        s = Structure.from_dict(json.loads(rec.structure_json))
        entries.append(RefEntry(rec.material_id, s.composition, rec.formation_energy_per_atom,
                                rec.volume_per_atom, s, rec.mp_energy_per_atom))
    return ReferenceSet(label, version, entries)


# ----------------------------------------------------------------------------- live API
def live_reference_set(elements: Sequence[str], client) -> ReferenceSet:
    """Entries of a chemical system from an ``MPRester``-like client (already authenticated).

    Uses ``get_entries_in_chemsys`` (MP2020-compatible mixed entries) and
    ``get_database_version``. The client is passed in so tests can substitute it. Any failure of
    the query (``MPRestError``, network and HTTP errors, entries that make no phase diagram) is
    raised as one-line ``ReferenceError`` with the API key masked, so ``source: auto`` can fall
    back and ``source: live`` can stop with a readable reason.
    """
    chemsys = "-".join(elements)
    try:
        raw = client.get_entries_in_chemsys(list(elements))
        version = client.get_database_version() or "unknown"
    except Exception as exc:
        # the client's errors are not ours to classify: all mean "no live data"
        raise ReferenceError(
            f"Materials Project query for {chemsys} failed ({_describe(exc)})") from None
    if not raw:
        raise ReferenceError(f"Materials Project returned no entries for {chemsys}")
    try:
        pd_live = PhaseDiagram(raw)
    except ValueError as exc:  # e.g. no entry for one of the elements
        raise ReferenceError(f"Materials Project entries for {chemsys} make no phase diagram "
                             f"({_describe(exc)})") from None
    entries = []
    for e in raw:
        s = getattr(e, "structure", None)
        comp = e.composition
        vpa = s.volume / comp.num_atoms if s is not None else float("nan")
        entries.append(RefEntry(str(e.entry_id), comp, pd_live.get_form_energy_per_atom(e),
                                vpa, s, e.energy_per_atom))
    return ReferenceSet("live", f"MP database {version}", entries)


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 200 characters, with ``MP_API_KEY`` masked."""
    msg = " ".join(str(exc).split())
    key = os.environ.get("MP_API_KEY")
    if key:
        msg = msg.replace(key, "***")
    return f"{type(exc).__name__}: {msg[:200]}"


def open_live_client():
    """An ``MPRester`` if ``MP_API_KEY`` is set and the API answers, else None (reason logged)."""
    key = os.environ.get("MP_API_KEY")
    if not key:
        log.info("live Materials Project: MP_API_KEY not set; skipping")
        return None
    try:
        from mp_api.client import MPRester

        client = MPRester(api_key=key, mute_progress_bars=True)
        client.get_database_version()
        return client
    except Exception as exc:  # network errors, auth errors: fall through to the snapshot
        log.warning("live Materials Project unavailable (%s); falling back", _describe(exc))
        return None


# ----------------------------------------------------------------------------- estimate
def element_volume_per_atom(el: str) -> float:
    """Elemental volume per atom (Å^3) from pymatgen's molar volume; a rough, labelled estimate."""
    mv = Element(el).molar_volume  # cm^3/mol
    if mv is None:
        raise ReferenceError(f"no molar volume for {el} in pymatgen's element data")
    return float(mv) * 1e24 / AVOGADRO


def estimate_reference_set(elements: Sequence[str]) -> ReferenceSet:
    entries = [RefEntry(f"estimate-{el}", Composition(el), 0.0, element_volume_per_atom(el))
               for el in elements]
    return ReferenceSet("estimate", "pymatgen element data (molar volumes); no energies", entries)
