"""GPAW single-point wall time per structure vs atom count (not a test; results go to README/docs).

Cells: random SiO2 (sequential insertion) at 2.2 g/cm^3 with >= 1.5 Å separations (no relaxation;
the SCF cost depends on atoms, electrons, cell and k-points, not on how glassy the geometry is),
6..N atoms, with the demo settings (or --ecut/--kpt-density). Each structure runs in its own process
with one BLAS thread, as in the workflow. Usage:

    .venv/bin/python benchmarks/gpaw_timing.py --sizes 6 12 24 --ecut 400 --kpt-density 2.0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from ase import Atoms

from vitriflow.dft.gpaw_backend import GpawSettings, run_batch


def random_sio2(n_formula: int, seed: int, density_g_cm3: float = 2.2) -> Atoms:
    mass = n_formula * (28.0855 + 2 * 15.999) / 6.02214076e23  # g
    length = (mass / density_g_cm3 * 1e24) ** (1 / 3)  # Å
    rng = np.random.default_rng(seed)
    n = 3 * n_formula
    pos: list[np.ndarray] = []
    cell = np.eye(3) * length
    while len(pos) < n:  # random sequential insertion with a 1.5 Å minimum image distance
        p = rng.random(3) * length
        if pos:
            d = np.asarray(pos) - p
            d -= length * np.round(d / length)
            if np.min(np.linalg.norm(d, axis=1)) < 1.5:
                continue
        pos.append(p)
    return Atoms(f"Si{n_formula}O{2 * n_formula}", positions=pos, cell=cell, pbc=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[6, 12, 24])
    ap.add_argument("--ecut", type=float, default=400.0)
    ap.add_argument("--kpt-density", type=float, default=2.0)
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args()
    s = GpawSettings(ecut_eV=args.ecut, kpt_density=args.kpt_density)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            if n % 3:
                raise SystemExit(f"--sizes: {n} is not a multiple of 3 (SiO2 formula units)")
            a = random_sio2(n // 3, seed=n)
            a.info["structure_id"] = f"sio2_{n}"
            t0 = time.perf_counter()
            df, run = run_batch([a], s, tmp, workers=1)
            r = df.iloc[0]
            rows.append({"n_atoms": n, "status": r["status"],
                         "wall_s": round(time.perf_counter() - t0, 1),
                         "gpaw_wall_s": round(run["wall_s"][a.info["structure_id"]], 1),
                         "kpts": r.get("kpts", ""), "cell_A": round(float(a.cell.lengths()[0]), 2)})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"settings": s.__dict__, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
