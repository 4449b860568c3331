"""Config semantics beyond the JSON schema: systems, scans, protocols, and checks that need code.

The schema (workflow/schemas/config.schema.yaml) checks shapes and fills defaults; this module
checks meaning before any job runs (compositions parse, grids are non-empty, every composition
fits its cell, protocols exist, snapshot paths exist) and expands binary scans into batched
systems. Every error is one line naming the config key and the offending value.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Element

from vitriflow.composition import (
    CompositionError,
    GlassComposition,
    cell_stoichiometry,
    composition_grid,
    parse_composition,
)

POTENTIALS = ("sevennet-0", "chgnet", "bks", "chik", "shik", "teter", "pedone")  # = potentials.ALL (kept torch-free)
# what potentials.load_model(name, **potential_options) accepts: the keyword-only settings of
# ClassicalPairModel (a test keeps them equal), enable_cueq for SevenNet, nothing for CHGNet
_CLASSICAL_OPTIONS = ("coulomb", "alpha", "cutoff", "coulomb_cutoff", "truncation", "smoothing_width",
                      "walls", "skin", "compile")
POTENTIAL_OPTIONS = {"sevennet-0": ("enable_cueq",), "chgnet": (),
                     **{name: _CLASSICAL_OPTIONS for name in POTENTIALS if name not in ("sevennet-0", "chgnet")}}


class ConfigError(ValueError):
    """A configuration value that is well-formed but means something impossible."""


@dataclass(frozen=True)
class SystemSpec:
    """One batched unit of work: a named list of compositions with potential and protocol."""

    name: str
    potential: str
    protocol: str
    atoms_per_cell: int
    replicas: int
    where: str
    compositions_cfg: tuple = ()
    grid: Mapping[str, Any] | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    step: float | None = None
    potential_options: Mapping[str, Any] | None = None

    def elements(self) -> set[str]:
        """Elements present in any composition (cheap for scans: read off the pairs)."""
        if self.pairs:
            return {el for pair in self.pairs for el in pair}
        return {el for comp in self.compositions() for el in comp.elements}

    def compositions(self) -> list[GlassComposition]:
        """The expanded, validated compositions of this system (in a fixed order)."""
        if self.pairs:
            out = []
            for a, b in self.pairs:
                out.extend(composition_grid([a, b], self.step, where=self.where))
            return out
        if self.grid is not None:
            g = self.grid
            return composition_grid(
                g["endmembers"], g["step"], g.get("include_endmembers", False),
                g.get("bounds"), where=f"{self.where}.grid",
            )
        return [parse_composition(c, where=f"{self.where}.compositions[{i}]")
                for i, c in enumerate(self.compositions_cfg)]


def structure_seed(master_seed: int, system: str, composition_index: int, replica: int) -> int:
    """Deterministic 31-bit seed per structure, independent of job order and batching."""
    key = f"{master_seed}:{system}:{composition_index}:{replica}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


def structure_id(system: str, composition_index: int, replica: int) -> str:
    return f"{system}-c{composition_index:04d}-r{replica:02d}"


def _scan_pairs(scan: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    if scan.get("elements"):
        els = list(scan["elements"])
        pairs = list(itertools.combinations(els, 2))
    elif scan.get("elements_a") and scan.get("elements_b"):
        pairs = [(a, b) for a in scan["elements_a"] for b in scan["elements_b"] if a != b]
    else:
        raise ConfigError(f"{where}: give either 'elements' or both 'elements_a' and 'elements_b'")
    for a, b in pairs:
        for el in (a, b):
            if not Element.is_valid_symbol(el):
                raise ConfigError(f"{where}: unknown element {el!r}")
    excluded = {frozenset(p) for p in scan.get("exclude_pairs", [])}
    seen, out = set(), []
    for a, b in pairs:
        key = frozenset((a, b))
        if key in excluded or key in seen:
            continue
        seen.add(key)
        out.append(tuple(sorted((a, b))))
    if not out:
        raise ConfigError(f"{where}: the scan has no element pairs")
    return out


def expand_systems(config: Mapping[str, Any]) -> dict[str, SystemSpec]:
    """All systems of a config: explicit ones plus scan batches, keyed by name (cheap: no parsing)."""
    systems: dict[str, SystemSpec] = {}
    for i, s in enumerate(config.get("systems", [])):
        where = f"systems[{i}] ({s['name']})"
        if ("compositions" in s) == ("grid" in s):
            raise ConfigError(f"{where}: give exactly one of 'compositions' or 'grid'")
        spec = SystemSpec(
            name=s["name"], potential=s["potential"], protocol=s["protocol"],
            atoms_per_cell=s.get("atoms_per_cell", 100), replicas=s.get("replicas", 1),
            where=where, compositions_cfg=tuple(s.get("compositions", ())), grid=s.get("grid"),
            potential_options=dict(s.get("potential_options") or {}),
        )
        _add(systems, spec)
    for i, scan in enumerate(config.get("scans", [])):
        where = f"scans[{i}] ({scan['name']})"
        pairs = _scan_pairs(scan, where)
        step = scan["step"]
        per_pair = round(1 / step) - 1
        if per_pair < 1:
            raise ConfigError(f"{where}.step: {step} leaves no composition between the endmembers")
        pairs_per_job = max(1, scan.get("compositions_per_job", 64) // per_pair)
        n_jobs = math.ceil(len(pairs) / pairs_per_job)
        for j in range(n_jobs):
            chunk = tuple(pairs[j * pairs_per_job:(j + 1) * pairs_per_job])
            spec = SystemSpec(
                name=f"{scan['name']}_{j:04d}", potential=scan["potential"],
                protocol=scan["protocol"], atoms_per_cell=scan.get("atoms_per_cell", 100),
                replicas=scan.get("replicas", 1), where=f"{where} job {j}", pairs=chunk, step=step,
            )
            _add(systems, spec)
    if not systems:
        raise ConfigError("systems: the config declares no systems or scans")
    return systems


def _add(systems: dict[str, SystemSpec], spec: SystemSpec) -> None:
    if spec.name in systems:
        raise ConfigError(f"{spec.where}: duplicate system name {spec.name!r}")
    systems[spec.name] = spec


def optional_data_file(path: str | Path, key: str) -> str:
    """'' when ``path`` is a file; the reason to go without it when its folder is absent (a data
    set that is not installed, as in a fresh clone without ../shared); a ConfigError naming
    ``key`` when the folder exists but the file does not, which is a typo, not a missing data set."""
    import difflib

    path = Path(path)
    if path.is_file():
        return ""
    if not path.parent.is_dir():
        return f"{key}: {path} not found (its folder {path.parent} is absent)"
    near = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"{key}: no file {path.name!r} in {path.parent}{hint}")


def check_config(config: Mapping[str, Any], base_dir: str | Path = ".", deep: bool = True) -> dict[str, SystemSpec]:
    """Meaning checks after schema validation; returns the expanded systems.

    ``deep`` parses every composition and checks it fits its cell (skip it for huge scans,
    whose compositions are generated from valid element pairs and checked in their own jobs).
    """
    systems = expand_systems(config)
    protocols = config.get("protocols", {})
    for spec in systems.values():
        if spec.protocol not in protocols:
            raise ConfigError(
                f"{spec.where}.protocol: unknown protocol {spec.protocol!r}; defined: {sorted(protocols)}"
            )
        if spec.potential not in POTENTIALS:
            raise ConfigError(f"{spec.where}.potential: unknown potential {spec.potential!r}; expected one of {POTENTIALS}")
        unknown = sorted(set(spec.potential_options or {}) - set(POTENTIAL_OPTIONS[spec.potential]))
        if unknown:
            raise ConfigError(f"{spec.where}.potential_options: unknown option(s) {unknown} for {spec.potential}; "
                              f"expected some of {list(POTENTIAL_OPTIONS[spec.potential])}")
        if deep and not spec.pairs:
            try:
                comps = spec.compositions()
            except CompositionError as exc:
                raise ConfigError(str(exc)) from exc
            if not comps:
                raise ConfigError(f"{spec.where}: no compositions")
            for comp in comps:
                try:
                    cell_stoichiometry(comp, spec.atoms_per_cell, where=f"{spec.where}.atoms_per_cell")
                except CompositionError as exc:
                    raise ConfigError(str(exc)) from exc
    refs = config.get("references", {})
    snap = refs.get("snapshot_dir")
    if snap and refs.get("on_missing_snapshot", "error") == "error":
        path = Path(base_dir) / snap
        if not path.is_dir():
            raise ConfigError(f"references.snapshot_dir: folder {snap!r} does not exist (set on_missing_snapshot: fallback to use estimates instead)")
        from vitriflow.references import missing_snapshot_files

        missing = missing_snapshot_files(path)
        if missing:
            raise ConfigError(f"references.snapshot_dir: {snap!r} lacks the snapshot files {missing} (expected the "
                              "Materials Project files listed in data/README.md; set on_missing_snapshot: fallback "
                              "to use estimates instead)")
    if refs.get("source") == "snapshot" and not snap:
        raise ConfigError("references.source: 'snapshot' needs references.snapshot_dir")
    if refs.get("source") == "live" and not os.environ.get("MP_API_KEY"):
        # checked here, not only in the job, so a run cannot do its other stages first and then
        # stop at the references (jobs, on a cluster too, inherit the submitting environment)
        raise ConfigError("references.source: 'live' needs the MP_API_KEY environment variable, which is "
                          "not set (use 'auto' to fall back to the snapshot or the estimate)")
    for name, proto in protocols.items():
        for k, st in enumerate(proto["stages"]):
            t = st["temperature_K"]
            if isinstance(t, list) and len(t) != 2:
                raise ConfigError(f"protocols.{name}.stages[{k}].temperature_K: expected a number or [start, end]")
        every, last = proto.get("sample_every", 0), proto["stages"][-1]
        if every and every > last["steps"]:
            raise ConfigError(f"protocols.{name}.sample_every: {every} is more than the {last['steps']} steps of "
                              f"its last stage ({last['name']!r}), so no frame would be kept; expected at most "
                              f"{last['steps']} (0 = no frames)")
    return systems
