"""Throughput of batched melt-quench MD: atom-steps/s vs batch size, per potential and device.

Random SiO2 cells of 99 atoms at 3000 K, NVT Nose-Hoover (or, with ``--ensemble npt``, the
workflow's stochastic cell rescaling at 0 GPa), 2 fs (SevenNet-0) / 1 fs (classical).

    python benchmarks/md_throughput.py --device cuda --potentials sevennet-0 teter \
        --batch-sizes 1 8 32 128 512 --steps 20
    python benchmarks/md_throughput.py --device cpu --potentials bks --ensemble nvt npt \
        --batch-sizes 8 --steps 200      # classical neighbour-list reuse under a moving cell

Prints a Markdown table (and writes it to --out when given). Out-of-memory is reported as such.
"""

from __future__ import annotations

import argparse
import time

import torch


def random_sio2(n_cells: int, seed: int = 0):
    from vitriflow.structures.packing import PackingRequest, pack

    reqs = [PackingRequest({"Si": 33, "O": 66}, 15.71 * 1.15, seed + i, {"structure_id": f"b{i}"})
            for i in range(n_cells)]
    return pack(reqs, min_distance_scale=0.7, device="cpu")


def measure(potential: str, device: str, n_systems: int, steps: int, cells, cueq=None,
            ensemble: str = "nvt") -> dict:
    import torch_sim as ts

    from vitriflow.potentials import load_model

    opts = {} if cueq is None else {"enable_cueq": cueq}
    model = load_model(potential, device=device,
                       dtype=torch.float64 if device == "cpu" else torch.float32, **opts)
    from vitriflow.md import prerelax

    atoms = prerelax(cells, model, 100, device)  # remove packing strain as the workflow does
    atoms = [atoms[i % len(atoms)] for i in range(n_systems)]
    state = ts.io.atoms_to_state(atoms, device=torch.device(device), dtype=model.dtype)
    units = ts.units.MetalUnits
    dt = (2.0 if potential in ("sevennet-0", "chgnet") else 1.0) * 1e-3 * units.time
    kT = 3000 * units.temperature
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        if ensemble == "npt":  # as vitriflow.md runs NPT stages
            state.rng = 0
            st = ts.npt_crescale_init(state, model, kT=kT, dt=dt, tau_p=1000e-3 * units.time,
                                      isothermal_compressibility=4.5e-5 / units.pressure)
            step, extra = ts.npt_crescale_isotropic_step, {"external_pressure": 0.0,
                                                           "tau": 100e-3 * units.time}
        else:
            st = ts.nvt_nose_hoover_init(state, model, kT=kT, dt=dt)
            step, extra = ts.nvt_nose_hoover_step, {}
        for _ in range(3):  # warm-up (kernels, neighbour lists)
            st = step(st, model, dt=dt, kT=kT, **extra)
        if device == "cuda":
            torch.cuda.synchronize()
        builds0 = getattr(model, "n_neighbor_builds", 0)
        t0 = time.perf_counter()
        for _ in range(steps):
            st = step(st, model, dt=dt, kT=kT, **extra)
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        builds = getattr(model, "n_neighbor_builds", 0) - builds0
        note = (f"{builds} neighbour-list builds in {steps} steps"
                if hasattr(model, "n_neighbor_builds") else "")
    except torch.OutOfMemoryError:
        return {"potential": potential, "ensemble": ensemble, "cueq": cueq, "systems": n_systems,
                "atom_steps_per_s": float("nan"), "gpu_mem_GB": float("nan"),
                "note": "out of memory"}
    finally:
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    n_atoms = sum(len(a) for a in atoms)
    mem = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
    return {"potential": potential, "ensemble": ensemble, "cueq": cueq, "systems": n_systems,
            "atom_steps_per_s": n_atoms * steps / elapsed, "gpu_mem_GB": mem, "note": note}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--potentials", nargs="+", default=["sevennet-0", "teter"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32, 128])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cueq", choices=["auto", "both", "off"], default="auto")
    ap.add_argument("--ensemble", nargs="+", choices=["nvt", "npt"], default=["nvt"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cells = random_sio2(8)
    rows = []
    for pot in args.potentials:
        variants = [None]
        if pot == "sevennet-0" and args.device == "cuda" and args.cueq == "both":
            variants = [False, True]
        elif pot == "sevennet-0" and args.cueq == "off":
            variants = [False]
        for cueq in variants:
            for ens in args.ensemble:
                for n in args.batch_sizes:
                    row = measure(pot, args.device, n, args.steps, cells, cueq, ens)
                    rows.append(row)
                    print(row, flush=True)
                    if row["note"] == "out of memory":
                        break
    dev = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    lines = [f"Device: {dev}; torch {torch.__version__}", "",
             "| potential | ensemble | cuEquivariance | systems x 99 atoms | atom-steps/s | peak "
             "GPU memory (GB) | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['potential']} | {r['ensemble']} | {r['cueq']} | {r['systems']} | "
                     f"{r['atom_steps_per_s']:.3g} | {r['gpu_mem_GB']:.3g} | {r['note']} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
