"""Materials Project crystal references: live API, local snapshot, or labelled estimate.

For each composition we need the crystalline ground state the amorphous cell is compared with:
the hull decomposition (phases and fractions), its volume per atom (sets the packing density,
Aykol et al.: 1.15 x crystal volume), its formation energy, and the structures themselves (for
DFT/MLIP comparison). Three sources, tried in order under ``source: auto``:

1. ``live``: ``mp_api.client.MPRester`` with ``MP_API_KEY`` (never logged or written);
2. ``snapshot``: the files of ../shared/data/materials_project (see ``build_snapshot_index``);
3. ``estimate``: composition-weighted elemental molar volumes from pymatgen's element data;
   no energies. Always labelled ``estimate`` in outputs and logs.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure

from vitriflow.io import sha256_file

log = logging.getLogger("vitriflow.references")
AVOGADRO = 6.02214076e23

SNAPSHOT_FILES = {
    "flla": "matminer039_flla_2015.csv.gz",
    "binary_structures": "matcalc_mp-binary-pbe-elasticity-2025.1.json.gz",
    "formation": "roost_mp-formation.csv.gz",
    "element_structures": "matcalc_MP-PBE-Element-Refs.json.gz",
    "element_entries": "mbd_2023-02-07-mp-elemental-reference-entries.json.gz",
}


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


def build_snapshot_index(snapshot_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, str]]:
    """One table of every crystal in the snapshot with structure, volume and formation energy.

    Joins MP binary structures (matcalc) with MP formation energies (roost) by material id,
    adds the matminer FLLA set (structures + formation energies), and the lowest-energy
    elemental polymorphs (formation energy 0 by definition; higher polymorphs relative to it).
    Returns the table and the SHA-256 of every file used.
    """
    d = Path(snapshot_dir)
    missing = missing_snapshot_files(d)
    if missing:
        raise ReferenceError(f"references.snapshot_dir: {d} lacks {missing}")
    checksums = {f: sha256_file(d / f) for f in SNAPSHOT_FILES.values()}
    rows = []

    flla = pd.read_csv(d / SNAPSHOT_FILES["flla"], comment="#")
    for rec in flla.itertuples():
        s = Structure.from_dict(_literal(rec.structure))
        rows.append(_row(rec.material_id, s, rec.formation_energy_per_atom, "flla_2015"))

    formation = pd.read_csv(d / SNAPSHOT_FILES["formation"])
    ef_by_id = dict(zip(formation.task_id, formation.formation_energy_per_atom, strict=True))
    with gzip.open(d / SNAPSHOT_FILES["binary_structures"], "rt") as fh:
        binaries = json.load(fh)
    seen = {r["material_id"] for r in rows}
    for rec in binaries:
        mid = rec["mp_id"]
        if mid in seen or mid not in ef_by_id:
            continue
        rows.append(_row(mid, Structure.from_dict(rec["structure"]), ef_by_id[mid], "matcalc_binary+roost"))
        seen.add(mid)

    with gzip.open(d / SNAPSHOT_FILES["element_entries"], "rt") as fh:
        element_entries = json.load(fh)
    with gzip.open(d / SNAPSHOT_FILES["element_structures"], "rt") as fh:
        element_structures = json.load(fh)
    for el, rec in element_structures.items():
        energies = np.asarray(rec["energy_per_atom"], dtype=float)
        e_min = energies.min()
        best = int(energies.argmin())
        s = Structure.from_dict(rec["structure"][best])
        ref = element_entries.get(el, {})
        mp_epa = float(ref["energy"]) / Composition(ref["composition"]).num_atoms if ref else float("nan")
        mid = ref.get("entry_id") or ref.get("data", {}).get("material_id") or f"element-{el}"
        row = _row(str(mid), s, 0.0, "matcalc_element_refs", mp_energy_per_atom=mp_epa)
        row["pbe_energy_per_atom"] = float(e_min)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table, checksums


def missing_snapshot_files(snapshot_dir: str | os.PathLike) -> list[str]:
    """Names of the ``SNAPSHOT_FILES`` not present in ``snapshot_dir`` (all of them if it is absent)."""
    d = Path(snapshot_dir)
    return [f for f in SNAPSHOT_FILES.values() if not (d / f).is_file()]


def snapshot_inputs(snapshot_dir: str | os.PathLike | None, source: str) -> list[str]:
    """The snapshot files the ``snapshot_index`` rule reads, as its declared inputs (so a changed
    file reruns it): those present in ``snapshot_dir`` when ``source`` uses the snapshot, [] when
    the folder is absent (a fresh clone without ../shared) or the source never reads it."""
    if not snapshot_dir or source not in ("auto", "snapshot") or not Path(snapshot_dir).is_dir():
        return []
    return [str(Path(snapshot_dir) / f) for f in SNAPSHOT_FILES.values() if (Path(snapshot_dir) / f).is_file()]


def index_snapshot(snapshot_dir: str | os.PathLike | None, source: str,
                   on_missing_snapshot: str = "error") -> tuple[pd.DataFrame, dict[str, str], str]:
    """What the ``snapshot_index`` rule writes: the index, the files' checksums and a note.

    An empty index (and a note saying which source takes over) when ``source`` does not read the
    snapshot, no ``snapshot_dir`` is set, or it is absent or incomplete under
    ``on_missing_snapshot: fallback``; a ``ReferenceError`` naming the missing files otherwise.
    """
    empty = pd.DataFrame({"material_id": pd.Series(dtype=str)})
    after = "the estimate" if source == "snapshot" else "the live API if it answers, else the estimate"
    if source not in ("auto", "snapshot"):
        return empty, {}, f"references.source is {source!r}: the snapshot is not used"
    if not snapshot_dir:
        return empty, {}, f"no references.snapshot_dir: references fall back to {after}"
    d = Path(snapshot_dir)
    missing = missing_snapshot_files(d)
    if missing:
        why = (f"references.snapshot_dir: folder {str(snapshot_dir)!r} is absent" if not d.is_dir()
               else f"references.snapshot_dir: {str(snapshot_dir)!r} lacks {missing}")
        if on_missing_snapshot != "fallback":
            raise ReferenceError(f"{why} (set on_missing_snapshot: fallback to use estimates instead)")
        return empty, {}, f"{why}; on_missing_snapshot is 'fallback': references fall back to {after}"
    table, checksums = build_snapshot_index(d)
    return table, checksums, f"snapshot {snapshot_dir}"


def _literal(text: str):
    import ast

    return ast.literal_eval(text)


def _row(mid: str, s: Structure, ef: float, origin: str, mp_energy_per_atom: float = float("nan")) -> dict:
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


def snapshot_reference_set(index: pd.DataFrame, elements: Sequence[str], version: str) -> ReferenceSet:
    """The snapshot's entries inside the chemical system of ``elements`` (all subsystems)."""
    allowed = set(elements)
    sub = index[index["chemsys"].map(lambda cs: set(cs.split("-")) <= allowed)]
    missing = allowed - set(sub.loc[sub.n_elements == 1, "chemsys"])
    if missing:
        raise ReferenceError(f"snapshot has no elemental reference for {sorted(missing)}")
    entries = []
    for rec in sub.itertuples():
        s = Structure.from_dict(json.loads(rec.structure_json))
        entries.append(RefEntry(rec.material_id, s.composition, rec.formation_energy_per_atom,
                                rec.volume_per_atom, s, rec.mp_energy_per_atom))
    return ReferenceSet("snapshot", version, entries)


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
    except Exception as exc:  # the client's errors are not ours to classify: all mean "no live data"
        raise ReferenceError(f"Materials Project query for {chemsys} failed ({_describe(exc)})") from None
    if not raw:
        raise ReferenceError(f"Materials Project returned no entries for {chemsys}")
    try:
        pd_live = PhaseDiagram(raw)
    except ValueError as exc:  # e.g. no entry for one of the elements
        raise ReferenceError(f"Materials Project entries for {chemsys} make no phase diagram ({_describe(exc)})") from None
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
