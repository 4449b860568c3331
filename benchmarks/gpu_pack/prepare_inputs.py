"""Inputs of the device run, prepared on the CPU machine with the project's own code.

The device has no pymatgen and no Materials Project data, so everything that needs them is done
here and carried in the pack:

- ``throughput/cells.extxyz``: the random SiO2 cells of ``benchmarks/md_throughput.py``;
- ``silica/initial.extxyz`` + the resolved protocol: ``benchmarks/gpu_validation.py``'s cells
  (33 SiO2 units at 1.15 x the crystal volume per atom, seeds 1000 + replica) and its
  ``PROTOCOL`` (paper melt-quench + NPT + anneal, sampled frames), through
  ``vitriflow.md.Protocol.from_config`` (schema defaults filled in);
- ``dftval/<system>/``: for every system of the config's ``dft`` section, the starting cells
  (``vitriflow.structures.build.build_structures``), the reference table and crystals
  (``vitriflow.references.serve_references``, as the references rule serves them) and the
  system's resolved protocol.

``inputs.json`` lists it all, with each protocol's digest so that the device checks it rebuilt
the same schedule. ``--tiny`` makes the CPU smoke version: 12-atom SiO2, the smallest cells the
compositions allow, one replica, a handful of steps.

    python benchmarks/gpu_pack/prepare_inputs.py benchmarks/gpu_pack/build/stage/inputs
    python benchmarks/gpu_pack/prepare_inputs.py /tmp/inputs --tiny --references subset
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("vitriflow.gpu_pack")

#: gpu_validation.py's cells: SiO2 formula units, replicas, volume per atom (Å^3), first seed
SILICA = {"formula_units": 33, "replicas": 8, "volume_per_atom_A3": 15.71 * 1.15, "seed0": 1000,
          "potential": "sevennet-0", "steps": [1500, 2500, 2000, 500]}
SILICA_TINY = {**SILICA, "formula_units": 4, "replicas": 1, "steps": [4, 4, 4, 4]}
#: md_throughput.py's cells: 8 random 99-atom SiO2 cells (tiny: two 12-atom cells)
THROUGHPUT = {"n_cells": 8, "formula_units": 33, "seed0": 0}
THROUGHPUT_TINY = {"n_cells": 2, "formula_units": 4, "seed0": 0}
#: what --tiny changes in every protocol besides the stage steps: a 4-step quench cannot cool a
#: cell, so the guard's temperature limit is opened for the smoke run
TINY_PROTOCOL = {"prerelax_steps": 3, "checkpoint_every": 4, "log_every": 2,
                 "relax": {"enabled": True, "fmax_eV_A": 0.05, "max_steps": 3},
                 "guard": {"min_distance_scale": 0.35, "max_temperature_factor": 100.0}}
TINY_STAGE_STEPS = 4


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolved(protocol) -> dict:
    return {"resolved": dataclasses.asdict(protocol), "digest": protocol.digest()}


def _sio2_requests(n_cells: int, units: int, volume: float, seed0: int, ids: str, extra=None):
    from vitriflow.structures.packing import PackingRequest

    return [PackingRequest({"Si": units, "O": 2 * units}, volume, seed0 + i,
                           {"structure_id": ids.format(i=i), **(extra(i) if extra else {})})
            for i in range(n_cells)]


def throughput_inputs(out: Path, tiny: bool) -> dict:
    from vitriflow.io import write_structures
    from vitriflow.structures.packing import pack

    cfg = THROUGHPUT_TINY if tiny else THROUGHPUT
    if tiny:
        cells = pack(_sio2_requests(cfg["n_cells"], cfg["formula_units"], 15.71 * 1.15,
                                    cfg["seed0"], "b{i}"), min_distance_scale=0.7)
    else:  # exactly md_throughput.py's cells
        cells = _load_script(REPO / "benchmarks" / "md_throughput.py").random_sio2(cfg["n_cells"])
    (out / "throughput").mkdir(parents=True, exist_ok=True)
    write_structures(cells, out / "throughput" / "cells.extxyz")
    return {**cfg, "atoms_per_cell": len(cells[0])}


def silica_inputs(out: Path, tiny: bool) -> dict:
    from vitriflow.io import write_structures
    from vitriflow.md import Protocol
    from vitriflow.structures.packing import pack

    cfg = SILICA_TINY if tiny else SILICA
    gv = _load_script(REPO / "benchmarks" / "gpu_validation.py")
    proto = copy.deepcopy(gv.PROTOCOL)
    steps = cfg["steps"]
    proto["sample_every"] = max(1, steps[3] // 10)  # as gpu_validation.main sets it
    for stage, n in zip(proto["stages"], steps, strict=True):
        stage["steps"] = n
    if tiny:
        proto.update(copy.deepcopy(TINY_PROTOCOL))
    protocol = Protocol.from_config(proto, where="gpu_validation.PROTOCOL")
    pot = cfg["potential"]
    cells = pack(_sio2_requests(
        cfg["replicas"], cfg["formula_units"], cfg["volume_per_atom_A3"], cfg["seed0"],
        f"sio2-{pot}-r{{i:02d}}", lambda i: {"replica": i, "formula": "SiO2"}))
    (out / "silica").mkdir(parents=True, exist_ok=True)
    write_structures(cells, out / "silica" / "initial.extxyz")
    return {**cfg, "atoms_per_cell": len(cells[0]), "protocol": _resolved(protocol)}


def _tiny_spec(spec):
    """The system with one replica of the smallest cell every composition fits in."""
    from vitriflow.composition import CompositionError, cell_stoichiometry

    comps = spec.compositions()
    for n in range(2, spec.atoms_per_cell + 1):
        try:
            for comp in comps:
                cell_stoichiometry(comp, n)
        except CompositionError:
            continue
        return dataclasses.replace(spec, atoms_per_cell=n, replicas=1)
    return dataclasses.replace(spec, replicas=1)


def dftval_inputs(out: Path, config: Path, tiny: bool, references: str) -> dict:
    import yaml

    from vitriflow.config import load_config, thaw
    from vitriflow.io import provenance, sha256_file, write_structures, write_table
    from vitriflow.md import Protocol
    from vitriflow.references import index_snapshot, load_snapshot_index, serve_references
    from vitriflow.structures.build import build_structures

    settings = load_config(yaml.safe_load(config.read_text()), base_dir=REPO)
    if not settings.enabled("dft"):
        raise SystemExit(f"prepare_inputs: {config} has no 'dft' section; expected the "
                         "DFT-validation config (config/dft_validation.yaml)")
    ref_cfg = settings.config["references"]
    derived = settings.derived["references"]
    files = dict(derived["files"]) if derived["files"] and references == "config" else None
    source = ref_cfg["source"] if references == "config" else "subset"
    table, prov = index_snapshot(files, derived["note"] if references == "config"
                                 else "subset asked for (prepare_inputs --references subset)")
    with tempfile.TemporaryDirectory() as tmp:  # the snapshot_index rule's file, read back
        write_table(table, Path(tmp) / "index.parquet", provenance(stage="snapshot_index", **prov))
        index, version, label = load_snapshot_index(Path(tmp) / "index.parquet")
    systems, protocols = {}, {}
    for name in settings.derived["dft"]["systems"]:
        spec = settings.systems[name]
        if tiny:
            spec = _tiny_spec(spec)
        refs, crystals = serve_references(
            spec.compositions(), source=source, snapshot=index, snapshot_version=version,
            e_above_hull_max=ref_cfg["e_above_hull_max_eV"], snapshot_label=label)
        atoms, _ = build_structures(spec, refs, settings.config["packing"],
                                    settings.config["seed"])
        if tiny:  # the composition the DFT selection visits first
            atoms = [a for a in atoms if a.info["composition_index"] == 0]
        folder = out / "dftval" / name
        folder.mkdir(parents=True, exist_ok=True)
        write_structures(atoms, folder / "initial.extxyz")
        write_structures(crystals, folder / "crystals.extxyz")
        write_table(refs, folder / "references.parquet",
                    provenance(stage="references", sources=sorted(refs["source"].unique())))
        if spec.protocol not in protocols:
            proto = thaw(settings.protocol(name))
            if tiny:
                proto.update(copy.deepcopy(TINY_PROTOCOL))
                for stage in proto["stages"]:
                    stage["steps"] = TINY_STAGE_STEPS
            protocols[spec.protocol] = _resolved(
                Protocol.from_config(proto, where=f"protocols.{spec.protocol}"))
        systems[name] = {"potential": spec.potential, "protocol": spec.protocol,
                         "potential_options": dict(spec.potential_options or {}),
                         "atoms_per_cell": spec.atoms_per_cell, "n_structures": len(atoms),
                         "n_failed_packing": sum(a.info.get("status") == "failed" for a in atoms),
                         "reference_sources": sorted(refs["source"].unique())}
        log.info("%s: %d cells of %d atoms, references from %s", name, len(atoms),
                 spec.atoms_per_cell, ", ".join(systems[name]["reference_sources"]))
    where = config.resolve()
    return {"config": str(where.relative_to(REPO)) if where.is_relative_to(REPO) else str(where),
            "config_sha256": sha256_file(config), "index_source": label,
            "seed": settings.config["seed"], "systems": systems, "protocols": protocols}


def prepare(out: str | os.PathLike, config: str | os.PathLike, tiny: bool = False,
            references: str = "config") -> dict:
    """Write every input of the device run under ``out``; returns the ``inputs.json`` record."""
    out = Path(out).resolve()
    config = Path(config).resolve()
    if not config.is_file():
        raise SystemExit(f"prepare_inputs: no config file {config}")
    out.mkdir(parents=True, exist_ok=True)
    cwd = Path.cwd()
    os.chdir(REPO)  # the config's data paths (cache_dir, snapshot files) are relative to the repo
    try:
        record = {"created_utc": datetime.now(UTC).isoformat(timespec="seconds"), "tiny": tiny,
                  "throughput": throughput_inputs(out, tiny), "silica": silica_inputs(out, tiny),
                  "dftval": dftval_inputs(out, config, tiny, references)}
    finally:
        os.chdir(cwd)
    (out / "inputs.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", help="folder to write (e.g. benchmarks/gpu_pack/build/stage/inputs)")
    ap.add_argument("--config", default=str(REPO / "config" / "dft_validation.yaml"))
    ap.add_argument("--tiny", action="store_true", help="CPU smoke sizes")
    ap.add_argument("--references", choices=["config", "subset"], default="config",
                    help="references as the config resolves them (default; the snapshot when "
                         "present), or the subset shipped in data/ (fast, no snapshot needed)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("torch_sim").setLevel(logging.WARNING)
    record = prepare(args.out, args.config, args.tiny, args.references)
    n = sum(s["n_structures"] for s in record["dftval"]["systems"].values())
    print(f"prepare_inputs: {args.out}: {record['throughput']['n_cells']} throughput cells, "
          f"{record['silica']['replicas']} silica cells, {n} DFT-validation cells in "
          f"{len(record['dftval']['systems'])} systems (references: "
          f"{record['dftval']['index_source']})")


if __name__ == "__main__":
    main()
