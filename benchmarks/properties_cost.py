"""Cost of the MD-based properties on the demo-sized set: batched elastic tensors (wall time)
and the NPT cooling scan (atom-steps/s).

The structures are the demo's quenched glasses (2 x 192-atom SiO2 + 14 x ~100-atom
Na2O-Al2O3-SiO2, Teter), made by the workflow's md rule:

    OMP_NUM_THREADS=2 python benchmarks/properties_cost.py --threads 2 \
        results/md/silica/quenched.extxyz results/md/nas/quenched.extxyz

Prints the machine load (``uptime``) before and after, the elastic wall time with the moduli
of every structure, and the cooling scan's atom-steps/s (``--scan-steps`` steps per
temperature, ``--scan-temperatures`` temperatures, all structures in one batch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ELASTIC = {"max_strain": 0.002, "n_deform": 3, "fmax_eV_A": 1e-3, "max_steps": 2000,
           "optimizer": "lbfgs", "relax_cell": True, "cell_fmax_eV_A": 1e-2,
           "max_strain_asymmetry": 0.2}


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").is_file() else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("structures", nargs="+", help="extxyz files of quenched glasses")
    ap.add_argument("--potential", default="teter")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scan-temperatures", type=int, default=4)
    ap.add_argument("--scan-steps", type=int, default=100)
    ap.add_argument("--skip-scan", action="store_true")
    args = ap.parse_args()

    import torch
    from ase.io import read

    from vitriflow.potentials import load_model
    from vitriflow.properties import elastic, thermal

    torch.set_num_threads(args.threads)
    for f in args.structures:
        if not Path(f).is_file():
            raise SystemExit(f"{f}: no such file; expected quenched glasses (run the md rule: "
                             "snakemake -c2 results/md/<system>/quenched.extxyz)")
    structures = [a for f in args.structures for a in read(f, index=":")]
    n_atoms = sum(len(a) for a in structures)
    model = load_model(args.potential)
    print(f"{len(structures)} structures, {n_atoms} atoms, {args.potential}, "
          f"{args.threads} threads (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}), "
          f"load before: {load()}")
    t0 = time.perf_counter()
    rows = elastic.elastic_properties(structures, model, ELASTIC)
    wall = time.perf_counter() - t0
    n_ok = sum(r["status"] == "ok" for r in rows)
    print(f"elastic: {wall:.1f} s for {len(rows)} structures ({n_ok} ok), load after: {load()}")
    for r in rows:
        if r["status"] == "ok":
            print(f"  {r['structure_id']}: K {r['bulk_modulus_GPa']:.1f} G "
                  f"{r['shear_modulus_GPa']:.1f} E {r['youngs_modulus_GPa']:.1f} GPa, nu "
                  f"{r['poisson_ratio']:.3f}, asymmetry {r['strain_asymmetry']:.3f}")
        else:
            print(f"  {r['structure_id']}: failed: {r['reason']}")
    if args.skip_scan:
        return
    n_t = args.scan_temperatures
    half = args.scan_steps // 2
    cfg = {"T_start_K": 3000.0, "T_end_K": 300.0, "step_K": 2700.0 / (n_t - 1),
           "melt_steps": 0, "equil_steps": half, "sample_steps": args.scan_steps - half,
           "sample_every": 10, "timestep_fs": 1.0, "pressure_GPa": 0.0,
           "thermostat_tau_fs": 100.0, "barostat_tau_fs": 1000.0, "checkpoint_every": 1000,
           "min_points_per_line": 2}
    steps = n_t * args.scan_steps
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        thermal.run_cooling_scan(structures, model, cfg, Path(tmp) / "scan.pt")
        wall = time.perf_counter() - t0
    print(f"cooling scan: {steps} steps x {n_atoms} atoms in {wall:.1f} s = "
          f"{steps * n_atoms / wall:.3g} atom-steps/s, load after: {load()}")


if __name__ == "__main__":
    main()
