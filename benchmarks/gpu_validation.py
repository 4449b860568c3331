"""SevenNet-0 amorphous SiO2 on the GPU: a validation run against the NIMROD data.

Packs N random SiO2 cells of 99 atoms at 1.15 x the MP crystal volume per atom, runs the paper's
melt-quench (3000 K 1,500 steps; cool to 300 K over 2,500; 2 fs; NVT Nose-Hoover) followed by an
NPT stage at 0 GPa and 300 K to let the density relax, a short NVT anneal (10 frames kept) and
FIRE, through vitriflow.md (batched, guarded, checkpointed). Writes quenched.extxyz,
samples.extxyz and trace.parquet to --out, then analyses them with vitriflow.analysis (structure
averaged over the anneal frames, as the workflow does) into properties.parquet and prints
density, Si-O peak, CN, angle modes and R_chi against the NIMROD data.

    python benchmarks/gpu_validation.py --replicas 8 --out $OUT
    python benchmarks/gpu_validation.py --replicas 1 --steps 20 20 20 20 --device cpu \
        --potential teter   # CPU smoke run of the script itself
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

from vitriflow.analysis import AnalysisSettings, analyze_system
from vitriflow.io import write_structures
from vitriflow.md import Protocol, run_melt_quench
from vitriflow.potentials import load_model
from vitriflow.runtime import pick_device
from vitriflow.structures.packing import PackingRequest, pack

PROTOCOL = {
    "timestep_fs": 2.0,
    "stages": [
        {"name": "melt", "steps": 1500, "temperature_K": 3000},
        {"name": "quench", "steps": 2500, "temperature_K": [3000, 300]},
        {"name": "npt", "ensemble": "npt", "steps": 2000, "temperature_K": 300,
         "pressure_GPa": 0.0},
        {"name": "anneal", "steps": 500, "temperature_K": 300},
    ],
    "checkpoint_every": 500,
    "log_every": 50,
    "sample_every": 50,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--out", default="benchmarks/out/gpu_validation")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--potential", default="sevennet-0",
                    help="a vitriflow.potentials name (default SevenNet-0)")
    ap.add_argument("--steps", nargs=4, type=int, default=[1500, 2500, 2000, 500],
                    metavar=("MELT", "QUENCH", "NPT", "ANNEAL"), help="steps per stage")
    args = ap.parse_args()
    PROTOCOL["sample_every"] = max(1, args.steps[3] // 10)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    for stage, n in zip(PROTOCOL["stages"], args.steps, strict=True):
        stage["steps"] = n
    reqs = [PackingRequest({"Si": 33, "O": 66}, 15.71 * 1.15, 1000 + i,
                           {"structure_id": f"sio2-{args.potential}-r{i:02d}", "replica": i,
                            "formula": "SiO2"})
            for i in range(args.replicas)]
    cells = pack(reqs)
    model = load_model(args.potential, device=device)
    t0 = time.perf_counter()
    samples = []
    final, trace = run_melt_quench(cells, model, Protocol.from_config(PROTOCOL),
                                   out / "checkpoint.pt", device=device, progress=False,
                                   samples=samples)
    wall = time.perf_counter() - t0
    steps = Protocol.from_config(PROTOCOL).total_steps
    print(f"{len(final)} x 99 atoms, {steps} steps in {wall:.0f} s on {device}: "
          f"{len(final) * 99 * steps / wall:.3g} atom-steps/s (incl. checkpoints, guard, relax)")
    for a in final:
        print(a.info["structure_id"], a.info["status"], a.info["reason"], a.info["density_g_cm3"])
    write_structures(final, out / "quenched.extxyz")
    write_structures(samples, out / "samples.extxyz")
    pd.DataFrame(trace).to_parquet(out / "trace.parquet")
    (out / "checkpoint.pt").unlink(missing_ok=True)
    by_structure = defaultdict(list)
    for a in samples:
        by_structure[a.info["structure_id"]].append(a)
    # the NIMROD F(Q) from the dataset cache or mirror ($VITRIFLOW_DATA_MIRROR), when it is there
    from vitriflow.datasets import DatasetError, fetch

    try:
        fq = str(fetch("nimrod_silica_fq", out / "resources"))
    except DatasetError as exc:
        print(f"no R_chi: {exc}")
        fq = None
    props = analyze_system(final, AnalysisSettings.from_config({"experimental_fq": fq}),
                           f"sio2_{args.potential}", samples=by_structure).properties
    props.to_parquet(out / "properties.parquet")
    ok = props[props["status"] == "ok"]
    cols = ["density_g_cm3", "rpeak_O_Si", "cn_Si_O", "angle_mode_O_Si_O_deg",
            "angle_mode_Si_O_Si_deg", "rchi_fq_exp", "analysed_frames"]
    print(f"analysis of {len(ok)} ok structures (mean / sd):")
    print(ok[[c for c in cols if c in ok]].agg(["mean", "std"]).round(3).to_string())


if __name__ == "__main__":
    main()
