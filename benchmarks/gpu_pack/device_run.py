"""Device side of the GPU validation run: one part per call, everything under ``--work``.

``run_on_device.sh`` calls the parts in this order, each under its own time limit:

- ``env``: versions, GPU, the neighbour list torch-sim uses, and whether cuEquivariance and
  vesin-torch work on this device (a component that fails here is hidden from the later parts,
  which then take the plain path) -> ``env.json``;
- ``throughput``: SevenNet-0 NVT (Nose-Hoover, 2 fs) at 3000 K on random ~100-atom SiO2 cells,
  batched through torch-sim at growing batch sizes, plain and with cuEquivariance, stopping a
  variant at out-of-memory; and one cell at a time through ASE's calculator as the same run's
  baseline. Atom-steps/s and peak GPU memory -> ``throughput.jsonl`` (one row per measurement,
  written as it finishes);
- ``silica``: ``benchmarks/gpu_validation.py``'s run (its cells and protocol, prepared on the CPU
  machine) through ``vitriflow.md.run_melt_quench`` -> ``quenched.extxyz``, ``samples.extxyz``,
  ``trace.parquet``; the analysis (it needs the NIMROD data) runs on the CPU machine;
- ``dftval``: the melt-quench of the DFT-validation systems -> ``<system>/quenched.extxyz``,
  ``trace.parquet``, ``summary.parquet`` as the workflow's md rule writes them, beside the cells
  and references they came from;
- ``summary``: a short text account of the parts found under ``--work``.

Each part ends by writing ``status.json`` (ok / failed / timed out, wall time; when its time
limit stopped it, how far it got). The imports stay within the device's packages and the pack's
(``device_env.py check-closure``): no pymatgen.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("vitriflow.gpu_pack")
PARTS = ("env", "throughput", "silica", "dftval", "summary")
#: batch sizes (cells per batch), timed steps and baseline of the throughput part
THROUGHPUT = {"batch_sizes": [1, 8, 32, 128, 512], "warmup": 2, "min_steps": 3, "max_steps": 50,
              "min_time_s": 2.0, "prerelax_steps": 100, "ase_cells": 2, "ase_warmup": 3,
              "ase_steps": 20}
THROUGHPUT_TINY = {"batch_sizes": [1, 2, 4], "warmup": 1, "min_steps": 2, "max_steps": 2,
                   "min_time_s": 0.0, "prerelax_steps": 3, "ase_cells": 1, "ase_warmup": 1,
                   "ase_steps": 2}
TEMPERATURE_K, TIMESTEP_FS, THERMOSTAT_TAU_FS = 3000.0, 2.0, 100.0
PACKAGES = ("torch", "torch-sim-atomistic", "sevenn", "ase", "vesin", "vesin-torch", "e3nn",
            "torch-geometric", "numpy", "cuequivariance", "cuequivariance-torch",
            "cuequivariance-ops-torch-cu13", "cuequivariance-ops-cu13", "tables", "matscipy")


class PartStopped(BaseException):
    """The part's time limit ran out (SIGTERM from ``timeout``). A BaseException, so that the
    library's ``except Exception`` fallbacks do not swallow it."""


def _on_term(signum, frame):
    raise PartStopped(f"stopped by signal {signum}")


def hide_modules(names: str | None = None) -> list[str]:
    """Make the named top-level modules unimportable (``import`` raises, ``find_spec`` returns
    None), as if not installed: how a component that failed the ``env`` check is left out."""
    names = os.environ.get("VF_HIDE_MODULES", "") if names is None else names
    hidden = [n.strip() for n in names.split(",") if n.strip()]
    for name in hidden:
        sys.modules[name] = None
    return hidden


# ----------------------------------------------------------------------------- helpers
def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _peak_gb(device: str) -> float:
    if device != "cuda":
        return float("nan")
    import torch

    return torch.cuda.max_memory_allocated() / 1e9


def _reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")
    log.info("%s", json.dumps(row, default=float))


def load_inputs(inputs: Path) -> dict:
    path = inputs / "inputs.json"
    if not path.is_file():
        raise SystemExit(f"device_run: no {path}; expected the folder prepare_inputs.py writes")
    return json.loads(path.read_text())


def protocol_from(record: dict):
    """The Protocol prepared (and digested) on the CPU machine, rebuilt without the config
    machinery (which needs pymatgen); refuses one whose digest differs."""
    from vitriflow.md.protocol import Protocol, Stage

    fields = dict(record["resolved"])
    protocol = Protocol(**{**fields, "stages": tuple(Stage(**s) for s in fields["stages"])})
    protocol.check()
    if protocol.digest() != record["digest"]:
        raise SystemExit(f"device_run: protocol digest {protocol.digest()} differs from the "
                         f"prepared {record['digest']}: vitriflow.md.protocol changed since the "
                         "pack was built; rebuild it")
    return protocol


def neighbour_list_backend() -> str:
    """The neighbour list torch-sim's models use here (its own order of preference)."""
    from torch_sim import neighbors

    if neighbors.ALCHEMIOPS_AVAILABLE:
        return "alchemiops_nl_n2"
    if neighbors.VESIN_TORCHSCRIPT_AVAILABLE:
        return "vesin_nl_ts"
    return "vesin_nl" if neighbors.VESIN_AVAILABLE else "torch_nl_linked_cell"


# ----------------------------------------------------------------------------- env
def part_env(args, work: Path) -> dict:
    """Versions, device, and the on-device checks that decide what the other parts may use."""
    import importlib.metadata as md
    import platform

    import numpy as np
    import torch

    from vitriflow.io import read_structures
    from vitriflow.potentials import cueq_available, load_model, single_points

    record: dict = {"python": platform.python_version(), "torch": torch.__version__,
                    "cuda": torch.version.cuda, "device": args.device,
                    "hidden_modules": hide_modules(), "hide": [], "checks": {}}
    record["packages"] = {}
    for name in PACKAGES:
        try:
            record["packages"][name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        record["gpu"] = {"name": props.name, "memory_GB": round(props.total_memory / 1e9, 1),
                         "capability": f"{props.major}.{props.minor}",
                         "multiprocessors": props.multi_processor_count}
    record["neighbour_list"] = neighbour_list_backend()
    cells = read_structures(args.inputs / "throughput" / "cells.extxyz")
    if args.device == "cuda" and record["neighbour_list"] == "vesin_nl_ts":
        try:
            from torch_sim.neighbors import vesin_nl_ts

            a = cells[0]
            pos = torch.tensor(a.positions, device="cuda", dtype=torch.float32)
            cell = torch.tensor(a.cell.array.T, device="cuda", dtype=torch.float32)[None]
            pbc = torch.ones(1, 3, dtype=torch.bool, device="cuda")
            system_idx = torch.zeros(len(a), dtype=torch.long, device="cuda")
            mapping, _, _ = vesin_nl_ts(pos, cell, pbc, 5.0, system_idx)
            record["checks"]["vesin_torch_cuda"] = f"ok: {mapping.shape[1]} pairs"
        except Exception as exc:  # noqa: BLE001 - any failure means: do not use it
            record["checks"]["vesin_torch_cuda"] = f"failed: {type(exc).__name__}: {exc}"
            record["hide"].append("vesin_torch")
    if args.device == "cuda" and cueq_available():
        try:
            plain = single_points(load_model("sevennet-0", device="cuda", enable_cueq=False), cells)
            cueq = single_points(load_model("sevennet-0", device="cuda", enable_cueq=True), cells)
            diff = np.abs(np.subtract(cueq, plain)) / np.array([len(a) for a in cells])
            record["checks"]["cueq"] = f"ok: |E_cueq - E_plain| <= {1000 * diff.max():.3g} meV/atom"
        except Exception as exc:  # noqa: BLE001
            record["checks"]["cueq"] = f"failed: {type(exc).__name__}: {exc}"
            record["hide"] += ["cuequivariance_torch", "cuequivariance_ops_torch"]
    else:
        record["checks"]["cueq"] = ("not installed" if args.device == "cuda"
                                    else "not used on the CPU")
    (work / "env.json").write_text(json.dumps(record, indent=1) + "\n")
    log.info("env: %s", json.dumps(record))
    return {"hide": record["hide"]}


# ----------------------------------------------------------------------------- throughput
def _measure_batched(model, cells, n: int, device: str, cfg: dict) -> dict:
    import torch
    import torch_sim as ts

    atoms = [cells[i % len(cells)] for i in range(n)]
    n_atoms = sum(len(a) for a in atoms)
    units = ts.units.MetalUnits
    dt = TIMESTEP_FS * 1e-3 * units.time
    kT = TEMPERATURE_K * units.temperature
    row = {"path": "batched", "systems": n, "atoms": n_atoms}
    _reset_peak(device)
    state = st = None
    try:
        state = ts.io.atoms_to_state(atoms, device=torch.device(device), dtype=model.dtype)
        state.rng = 0
        st = ts.nvt_nose_hoover_init(state, model, kT=kT, dt=dt,
                                     tau=THERMOSTAT_TAU_FS * 1e-3 * units.time)
        for _ in range(cfg["warmup"]):  # kernels, allocator, neighbour lists
            st = ts.nvt_nose_hoover_step(st, model, dt=dt, kT=kT)
        _sync(device)
        steps, t0 = 0, time.perf_counter()
        while steps < cfg["max_steps"] and (steps < cfg["min_steps"]
                                            or time.perf_counter() - t0 < cfg["min_time_s"]):
            st = ts.nvt_nose_hoover_step(st, model, dt=dt, kT=kT)
            _sync(device)
            steps += 1
        wall = time.perf_counter() - t0
        temps = ts.calc_temperature(masses=st.masses, momenta=st.momenta, system_idx=st.system_idx)
        row.update(steps=steps, wall_s=wall, atom_steps_per_s=n_atoms * steps / wall,
                   peak_gpu_memory_GB=_peak_gb(device), mean_T_K=float(temps.mean()), note="")
    except Exception as exc:  # noqa: BLE001 - out-of-memory is a result, anything else too
        oom = _is_oom(exc)
        row.update(steps=0, wall_s=float("nan"), atom_steps_per_s=float("nan"),
                   peak_gpu_memory_GB=_peak_gb(device), mean_T_K=float("nan"),
                   note="out of memory" if oom else f"error: {type(exc).__name__}: {exc}"[:300])
    finally:
        del state, st
        _reset_peak(device)
    return row


def _measure_ase(cells, cueq: bool, device: str, cfg: dict) -> dict:
    """One cell at a time through SevenNet's ASE calculator, ASE's Nose-Hoover chain NVT."""
    import numpy as np
    from ase import units
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from sevenn.calculator import SevenNetCalculator

    _reset_peak(device)
    row = {"path": "ase", "systems": 1, "atoms": len(cells[0]), "cells_run": cfg["ase_cells"]}
    try:
        calc = SevenNetCalculator("7net-0", device=device, enable_cueq=cueq)
        atom_steps, wall = 0, 0.0
        for k in range(cfg["ase_cells"]):
            a = cells[k % len(cells)].copy()
            a.calc = calc
            MaxwellBoltzmannDistribution(a, temperature_K=TEMPERATURE_K,
                                         rng=np.random.default_rng(k))
            Stationary(a)
            dyn = NoseHooverChainNVT(a, timestep=TIMESTEP_FS * units.fs,
                                     temperature_K=TEMPERATURE_K,
                                     tdamp=THERMOSTAT_TAU_FS * units.fs)
            dyn.run(cfg["ase_warmup"])
            _sync(device)
            t0 = time.perf_counter()
            dyn.run(cfg["ase_steps"])
            _sync(device)
            wall += time.perf_counter() - t0
            atom_steps += len(a) * cfg["ase_steps"]
        row.update(steps=cfg["ase_steps"], wall_s=wall, atom_steps_per_s=atom_steps / wall,
                   peak_gpu_memory_GB=_peak_gb(device), mean_T_K=float(a.get_temperature()),
                   note="")
    except Exception as exc:  # noqa: BLE001
        row.update(steps=0, wall_s=float("nan"), atom_steps_per_s=float("nan"),
                   peak_gpu_memory_GB=_peak_gb(device), mean_T_K=float("nan"),
                   note=f"error: {type(exc).__name__}: {exc}"[:300])
    return row


def part_throughput(args, work: Path) -> dict:
    from vitriflow.io import read_structures
    from vitriflow.md import prerelax
    from vitriflow.potentials import cueq_available, load_model

    cfg = THROUGHPUT_TINY if args.tiny else THROUGHPUT
    t_start = time.perf_counter()
    rows_path = work / "throughput.jsonl"
    rows_path.unlink(missing_ok=True)
    done: list[dict] = []
    PROGRESS.append(lambda: {"measurements_done": len(done)})
    device = args.device
    variants = [False] + ([True] if device == "cuda" and cueq_available() else [])
    common = {"potential": "sevennet-0", "ensemble": "nvt", "temperature_K": TEMPERATURE_K,
              "timestep_fs": TIMESTEP_FS, "device": device,
              "neighbour_list": neighbour_list_backend()}
    models = {c: load_model("sevennet-0", device=device, enable_cueq=c) for c in variants}
    cells = read_structures(args.inputs / "throughput" / "cells.extxyz")
    log.info("throughput: %d model(s) loaded; prerelaxing %d cells of %d atoms", len(models),
             len(cells), len(cells[0]))
    cells = prerelax(cells, models[False], cfg["prerelax_steps"], device)
    log.info("throughput: prerelaxed after %.1f s; measuring", time.perf_counter() - t_start)

    def record(row: dict, cueq: bool) -> dict:
        row = {**common, "cueq": cueq, **row}
        done.append(row)
        _append(rows_path, row)
        return row

    for cueq in variants:
        record(_measure_ase(cells, cueq, device, cfg), cueq)
    active = set(variants)
    per_atom_step: dict[bool, float] = {}
    for n in cfg["batch_sizes"]:
        for cueq in variants:
            if cueq not in active:
                continue
            n_atoms = n * len(cells[0])
            cost = per_atom_step.get(cueq, 0.0) * n_atoms * (cfg["warmup"] + cfg["min_steps"] + 2)
            if args.budget_s and time.perf_counter() - t_start + cost > args.budget_s:
                record({"path": "batched", "systems": n, "atoms": n_atoms,
                        "atom_steps_per_s": float("nan"),
                        "note": f"skipped: would pass the {args.budget_s:.0f} s budget"}, cueq)
                active.discard(cueq)
                continue
            row = record(_measure_batched(models[cueq], cells, n, device, cfg), cueq)
            if row["note"]:
                active.discard(cueq)  # out of memory (or an error): larger batches would too
            else:
                per_atom_step[cueq] = 1.0 / row["atom_steps_per_s"]
    return {"measurements": len(done), "cueq_variants": variants}


# ----------------------------------------------------------------------------- melt-quench
def _checkpoint_progress(checkpoint: Path, structures, model, protocol) -> dict:
    """How far each structure got, from the engine's checkpoint (the state of a stopped run)."""
    from vitriflow.io import load_checkpoint
    from vitriflow.md.engine import run_digest

    if not checkpoint.is_file():
        return {"progress": "no checkpoint yet (stopped before the first segment ended)"}
    payload = load_checkpoint(checkpoint, run_digest(structures, model, protocol),
                              weights_only=False)
    if payload is None:
        return {"progress": "checkpoint of another run"}
    steps = [t["step"] for t in payload["tasks"]]
    return {"progress": {"total_steps": protocol.total_steps, "min_step": min(steps),
                         "max_step": max(steps),
                         "statuses": dict(_count(t["status"] for t in payload["tasks"]))}}


def _count(values):
    out: dict = defaultdict(int)
    for v in values:
        out[v] += 1
    return out


def part_silica(args, work: Path) -> dict:
    import pandas as pd

    from vitriflow.io import read_structures, write_structures
    from vitriflow.md import run_melt_quench
    from vitriflow.potentials import cueq_available, load_model

    rec = load_inputs(args.inputs)["silica"]
    cells = read_structures(args.inputs / "silica" / "initial.extxyz")
    protocol = protocol_from(rec["protocol"])
    model = load_model(rec["potential"], device=args.device)
    checkpoint = work / "checkpoint.pt"
    resumed = checkpoint.is_file()  # then the wall time covers only the rest of the run
    PROGRESS.append(lambda: _checkpoint_progress(checkpoint, cells, model, protocol))
    samples: list = []
    t0 = time.perf_counter()
    final, trace = run_melt_quench(cells, model, protocol, checkpoint, device=args.device,
                                   progress=False, samples=samples)
    wall = time.perf_counter() - t0
    for a in (*final, *samples):
        a.info["potential"] = rec["potential"]
    write_structures(final, work / "quenched.extxyz")
    write_structures(samples, work / "samples.extxyz")
    pd.DataFrame(trace).to_parquet(work / "trace.parquet")
    checkpoint.unlink(missing_ok=True)
    atoms = sum(len(a) for a in cells)
    return {"potential": rec["potential"], "structures": len(final),
            "ok": sum(a.info["status"] == "ok" for a in final), "atoms": atoms,
            "total_steps": protocol.total_steps, "md_wall_s": wall, "resumed": resumed,
            "atom_steps_per_s": float("nan") if resumed else atoms * protocol.total_steps / wall,
            "cueq": args.device == "cuda" and cueq_available(),
            "neighbour_list": neighbour_list_backend(), "samples": len(samples),
            "stages": [dataclasses.asdict(st) for st in protocol.stages]}


def part_dftval(args, work: Path) -> dict:
    """The md rule's work for every DFT-validation system; systems sharing potential and
    protocol run as one batched job (each cell's trajectory depends only on its own seed)."""
    import pandas as pd

    from vitriflow.io import provenance, read_structures, write_structures, write_table
    from vitriflow.md import run_melt_quench
    from vitriflow.potentials import cueq_available, load_model

    rec = load_inputs(args.inputs)["dftval"]
    groups: dict[tuple, list[str]] = defaultdict(list)
    for name, s in rec["systems"].items():
        groups[(s["potential"], s["protocol"], json.dumps(s["potential_options"], sort_keys=True))
               ].append(name)
    out: dict = {"systems": {}, "cueq": args.device == "cuda" and cueq_available(),
                 "neighbour_list": neighbour_list_backend()}
    for k, ((potential, proto_name, options), names) in enumerate(sorted(groups.items())):
        src = {n: args.inputs / "dftval" / n for n in names}
        cells = [a for n in names for a in read_structures(src[n] / "initial.extxyz")]
        protocol = protocol_from(rec["protocols"][proto_name])
        model = load_model(potential, device=args.device, **json.loads(options))
        checkpoint = work / f"checkpoint_{k}.pt"
        resumed = checkpoint.is_file()
        PROGRESS.append(lambda c=checkpoint, s=cells, m=model, p=protocol:
                        _checkpoint_progress(c, s, m, p))
        t0 = time.perf_counter()
        final, trace = run_melt_quench(cells, model, protocol, checkpoint, device=args.device,
                                       progress=False)
        wall = time.perf_counter() - t0
        atom_steps = sum(len(a) for a in cells) * protocol.total_steps
        log.info("%s: %d cells, %.0f s, %.3g atom-steps/s", ", ".join(names), len(cells), wall,
                 atom_steps / wall)
        for a in final:
            a.info["potential"] = potential
        trace_df = pd.DataFrame(trace)
        for name in names:
            folder = work / name
            folder.mkdir(parents=True, exist_ok=True)
            mine = [a for a in final if a.info["system"] == name]
            ids = {a.info["structure_id"] for a in mine}
            prov = provenance(stage="md", inputs=[src[name] / "initial.extxyz"],
                              potential=potential, protocol=rec["protocols"][proto_name],
                              device=args.device, wall_s=wall, atom_steps=atom_steps,
                              resumed=resumed, batched_with=names)
            write_table(trace_df[trace_df["structure_id"].isin(ids)].reset_index(drop=True),
                        folder / "trace.parquet", prov)
            write_table(pd.DataFrame([dict(a.info) for a in mine]), folder / "summary.parquet",
                        prov)
            write_structures(mine, folder / "quenched.extxyz")
            for f in ("initial.extxyz", "references.parquet", "crystals.extxyz"):
                shutil.copy2(src[name] / f, folder / f)
            out["systems"][name] = {"structures": len(mine),
                                    "ok": sum(a.info["status"] == "ok" for a in mine),
                                    "md_wall_s": wall, "resumed": resumed,
                                    "atom_steps_per_s": float("nan") if resumed
                                    else atom_steps / wall}
        checkpoint.unlink(missing_ok=True)
    return out


# ----------------------------------------------------------------------------- summary
def part_summary(args, work: Path) -> dict:
    """Print what this call's parts (``--only``) left under ``--work`` (for the device call's
    output tail)."""
    for part in [p for p in args.only.split(",") if p]:
        status = work / part / "status.json"
        if not status.is_file():
            print(f"{part}: no status.json")
            continue
        s = json.loads(status.read_text())
        brief = {k: v for k, v in s.items() if k not in ("started_utc", "part", "device", "tiny")}
        print(f"{part}: {json.dumps(brief, default=str)[:1500]}")
        rows = work / part / "throughput.jsonl"
        if rows.is_file():
            for line in rows.read_text().splitlines():
                r = json.loads(line)
                print(f"  {r['path']:7s} cueq={r['cueq']!s:5s} systems={r['systems']:4d} "
                      f"atom-steps/s={r['atom_steps_per_s']:.3g} "
                      f"peak GB={r.get('peak_gpu_memory_GB', float('nan')):.3g} {r['note']}")
    return {}


PROGRESS: list = []  # callables a part registers: what to report if its time limit stops it
RUNNERS = {"env": part_env, "throughput": part_throughput, "silica": part_silica,
           "dftval": part_dftval, "summary": part_summary}


def run_part(args) -> int:
    """Run one part; write its status.json; 0 ok, 124 stopped by its time limit, 1 failed."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    status: dict = {"part": args.part, "device": args.device, "tiny": args.tiny,
                    "started_utc": datetime.now(UTC).isoformat(timespec="seconds")}
    t0 = time.perf_counter()
    rc = 0
    signal.signal(signal.SIGTERM, _on_term)
    try:
        if args.device == "cuda" and args.memory_fraction:
            import torch

            torch.cuda.set_per_process_memory_fraction(args.memory_fraction)
            status["memory_fraction"] = args.memory_fraction
        if args.beside:
            status["ran_beside"] = args.beside
        status.update(RUNNERS[args.part](args, work) or {})
        status["status"] = "ok"
    except PartStopped as exc:
        rc = 124
        status.update(status="timed out", reason=str(exc))
        for report in PROGRESS:
            try:
                status.update(report())
            except Exception as err:  # noqa: BLE001 - the status must still be written
                status.setdefault("progress_error", f"{type(err).__name__}: {err}")
    except Exception as exc:  # noqa: BLE001 - a failed part is reported, the others go on
        rc = 1
        traceback.print_exc()
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        status["wall_s"] = round(time.perf_counter() - t0, 2)
        if args.part != "summary":
            (work / "status.json").write_text(json.dumps(status, indent=1, default=str) + "\n")
    log.info("%s: %s in %.1f s", args.part, status["status"], status["wall_s"])
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("part", choices=PARTS)
    ap.add_argument("--work", required=True, help="this part's output folder")
    ap.add_argument("--inputs", type=Path, help="prepare_inputs.py's folder")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke sizes")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="throughput: start no measurement that would end past this many seconds")
    ap.add_argument("--memory-fraction", type=float, default=None,
                    help="cap this process's share of GPU memory (parts running side by side)")
    ap.add_argument("--beside", default="", help="the part running at the same time, if any")
    ap.add_argument("--only", default="throughput,silica,dftval",
                    help="summary: the parts to report (those of this call)")
    args = ap.parse_args(argv)
    if args.part not in ("summary",) and args.inputs is None:
        ap.error(f"{args.part} needs --inputs")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("torch_sim").setLevel(logging.WARNING)
    hide_modules()
    if args.device == "cpu":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return run_part(args)


if __name__ == "__main__":
    sys.exit(main())
