"""GPAW plane-wave PBE single points, one subprocess per structure.

Why subprocesses: a DFT job that does not converge, runs out of memory or crashes in C code must
not take the whole system's batch with it. Each structure runs as
``python -m vitriflow.dft.gpaw_backend <job.json>`` (optionally under an MPI launcher for MPI
builds of GPAW); the parent collects one result row per structure with ``status`` ``ok`` |
``failed`` and a ``reason``. The PyPI build used here has neither MPI nor OpenMP, so on a
workstation several structures run side by side, one BLAS thread each (``workers``).

Settings mirror the Materials Project where GPAW can: PBE, spin polarisation with MP's default
initial moments for magnetic elements, optional Dudarev DFT+U with the U values of pymatgen's
``MPRelaxSet.yaml`` (applied, as there, when O or F is the most electronegative element).
GPAW's PAW projectors differ from VASP's, so the same U does not give the same energetics.
Results of finished structures are cached in ``<workdir>/<structure_id>.json`` keyed by a
settings hash, so a rerun after an interruption redoes only what is missing. Wall times and
which results came from that cache depend on the run, not on the physics: ``run_batch`` returns
them apart from the energy table, for the provenance record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from vitriflow.io import structure_key

log = logging.getLogger(__name__)

SMEARINGS = ("fermi-dirac", "marzari-vanderbilt", "gaussian")
SPIN_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class GpawSettings:
    """Plane-wave DFT settings (energies in eV, k-point density in points per Å^-1)."""

    ecut_eV: float = 400.0
    kpt_density: float = 2.5
    kpt_density_amorphous: float | None = None  # None = kpt_density; 0 = Gamma only
    spin: str = "auto"
    smearing: str = "fermi-dirac"
    smearing_width_eV: float = 0.05
    xc: str = "PBE"
    hubbard_u: bool = False
    maxiter: int = 300
    energy_tol_eV: float = 5.0e-5  # per valence electron, GPAW's convergence criterion
    timeout_s: float = 3600.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.ecut_eV <= 50:
            raise ValueError("dft.gpaw.ecut_eV: expected a plane-wave cutoff > 50 eV, got "
                             f"{self.ecut_eV}")
        if self.kpt_density < 0:
            raise ValueError(f"dft.gpaw.kpt_density: expected >= 0, got {self.kpt_density}")
        if self.kpt_density_amorphous is not None and self.kpt_density_amorphous < 0:
            raise ValueError("dft.gpaw.kpt_density_amorphous: expected >= 0 or null, got "
                             f"{self.kpt_density_amorphous}")
        if self.spin not in SPIN_MODES:
            raise ValueError(f"dft.gpaw.spin: expected one of {SPIN_MODES}, got {self.spin!r}")
        if self.smearing not in SMEARINGS:
            raise ValueError(f"dft.gpaw.smearing: expected one of {SMEARINGS}, got "
                             f"{self.smearing!r}")
        if self.smearing_width_eV <= 0:
            raise ValueError("dft.gpaw.smearing_width_eV: expected > 0, got "
                             f"{self.smearing_width_eV}")

    def key(self) -> str:
        """Short hash of the settings (cache key)."""
        text = json.dumps(asdict(self) | {"timeout_s": None}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def gpaw_available() -> tuple[bool, str]:
    """(True, version) when GPAW and its PAW setups import, else (False, why)."""
    try:
        import gpaw
        from gpaw import setup_paths
    except Exception as exc:  # ImportError or a broken C extension
        return False, (f"GPAW cannot be imported ({type(exc).__name__}: {exc}); install with "
                       "`pip install 'vitriflow[dft]'` (needs libxc-dev, libopenblas-dev, CC=g++)")
    paths = [p for p in setup_paths if Path(p).is_dir()]
    if not paths and not os.environ.get("GPAW_SETUP_PATH"):
        return False, ("GPAW imports but no PAW setups were found (install `gpaw-data` or set "
                       "GPAW_SETUP_PATH)")
    return True, gpaw.__version__


@lru_cache(maxsize=1)
def _mp_config() -> dict:
    from pymatgen.io.vasp.sets import MPRelaxSet

    return MPRelaxSet.CONFIG


def mp_hubbard_u(symbols: Sequence[str]) -> dict[str, float]:
    """MP's U (eV) per element for this chemistry, from pymatgen's MPRelaxSet.yaml (may be {})."""
    from pymatgen.core import Element

    ldauu = _mp_config()["INCAR"]["LDAUU"]
    present = sorted(set(symbols), key=lambda s: Element(s).X)
    most_electroneg = present[-1]
    table = ldauu.get(most_electroneg, {})
    return {s: float(table[s]) for s in present if table.get(s, 0) > 0}


def mp_initial_magmoms(symbols: Sequence[str]) -> list[float]:
    """MP's default initial magnetic moments (VASPIncarBase MAGMOM, 0.6 otherwise)."""
    mag = _mp_config()["INCAR"]["MAGMOM"]
    return [float(mag.get(s, 0.6)) for s in symbols]


def wants_spin(atoms: Atoms, mode: str) -> bool:
    """Spin polarisation: forced on/off, or 'auto' = magnetic element present or an O2 molecule."""
    if mode in ("on", "off"):
        return mode == "on"
    mag = _mp_config()["INCAR"]["MAGMOM"]
    syms = atoms.get_chemical_symbols()
    if atoms.info.get("source_id") == "molecule:O2":
        return True
    return any(s in mag for s in syms)


def calculator_kwargs(atoms: Atoms, s: GpawSettings, txt: str | None) -> dict:
    """Keyword arguments for ``gpaw.GPAW`` (importable without GPAW for inspection)."""
    syms = atoms.get_chemical_symbols()
    is_molecule = str(atoms.info.get("source_id", "")).startswith("molecule:")
    smear = {"fermi-dirac": "fermi-dirac", "marzari-vanderbilt": "marzari-vanderbilt",
             "gaussian": "gaussian"}[s.smearing]
    kd = s.kpt_density
    if atoms.info.get("role") == "amorphous" and s.kpt_density_amorphous is not None:
        kd = s.kpt_density_amorphous
    kw: dict = {
        "mode": {"name": "pw", "ecut": float(s.ecut_eV)},
        "xc": s.xc,
        "kpts": (1, 1, 1) if (is_molecule or kd == 0) else {"density": float(kd), "gamma": True},
        "occupations": {"name": smear, "width": float(s.smearing_width_eV)},
        "spinpol": wants_spin(atoms, s.spin),
        "maxiter": int(s.maxiter),
        "convergence": {"energy": float(s.energy_tol_eV)},
        "txt": txt,
    }
    if is_molecule:
        kw["occupations"] = {"name": "fermi-dirac", "width": 0.0, "fixmagmom": kw["spinpol"]}
    if s.hubbard_u:
        u = mp_hubbard_u(syms)
        if u:
            kw["setups"] = {el: f":d,{val}" for el, val in u.items()}
    kw.update(s.extra)
    return kw


def _initial_magmoms(atoms: Atoms) -> list[float]:
    if atoms.info.get("source_id") == "molecule:O2":
        return [1.0] * len(atoms)
    return mp_initial_magmoms(atoms.get_chemical_symbols())


def run_one(atoms: Atoms, s: GpawSettings, txt: str | None = None) -> dict:
    """Single point in this process. Returns energy (eV), convergence and timing; raises nothing
    for SCF non-convergence (status 'failed' with the reason)."""
    from gpaw import GPAW, KohnShamConvergenceError

    a = atoms.copy()
    a.info = dict(atoms.info)
    kw = calculator_kwargs(a, s, txt)
    if kw["spinpol"]:
        a.set_initial_magnetic_moments(_initial_magmoms(a))
    t0 = time.perf_counter()
    calc = GPAW(**kw)
    a.calc = calc
    try:
        energy = float(a.get_potential_energy())
        status, reason = "ok", ""
    except KohnShamConvergenceError as exc:
        energy, status, reason = (float("nan"), "failed",
                                  f"SCF not converged in {s.maxiter} iterations ({exc})")
    wall = time.perf_counter() - t0
    out = {
        "energy_eV": energy, "status": status, "reason": reason, "wall_s": wall,
        "n_atoms": len(a), "spinpol": bool(kw["spinpol"]),
        "kpts": [int(k) for k in np.asarray(calc.wfs.kd.N_c)] if status == "ok" else None,
        "hubbard_u": kw.get("setups", {}),
    }
    if status == "ok" and kw["spinpol"]:
        out["magmom"] = float(a.get_magnetic_moment())
    return out


def _job_main(job_path: str) -> int:
    """Entry point of a structure subprocess: read job JSON, run, write result JSON."""
    from ase.io import read

    job = json.loads(Path(job_path).read_text())
    atoms = read(job["structure"], format="extxyz")
    s = GpawSettings(**job["settings"])
    try:
        res = run_one(atoms, s, txt=job["txt"])
    except Exception as exc:  # recorded, never silent
        res = {"energy_eV": float("nan"), "status": "failed",
               "reason": f"{type(exc).__name__}: {exc}", "wall_s": float("nan")}
    res["settings_key"] = s.key()
    res["input_key"] = job.get("input_key", "")
    tmp = Path(job["result"] + ".tmp")
    tmp.write_text(json.dumps(res, default=str))
    os.replace(tmp, job["result"])
    return 0


def run_batch(
    frames: Sequence[Atoms],
    settings: GpawSettings,
    workdir: str | os.PathLike,
    *,
    workers: int = 1,
    threads_per_worker: int = 1,
    mpi_command: str = "",
    python: str = sys.executable,
) -> tuple[pd.DataFrame, dict]:
    """Run every frame in its own subprocess (``workers`` at a time).

    Returns the energy table (one row per frame, the same for a fresh and a cached run) and the
    run record ``{"wall_s": {structure_id: s}, "cached": [structure_id, ...]}`` for provenance
    (a cached structure's wall time is that of the run that computed it).
    ``mpi_command`` (e.g. ``"mpiexec -n 4"``) prefixes each subprocess for MPI builds of GPAW.
    Finished results with the same settings hash are reused.
    """
    from ase.io import write

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads_per_worker)
    key = settings.key()

    def one(atoms: Atoms) -> dict:
        sid = str(atoms.info["structure_id"])
        result = workdir / f"{sid}.json"
        input_key = structure_key(atoms)
        if result.is_file():
            prev = json.loads(result.read_text())
            # ids survive an MD or selection rerun; the geometry must match too
            if (prev.get("settings_key") == key and prev.get("input_key") == input_key
                    and prev.get("status") == "ok"):
                log.info("%s (%d atoms): cached result of an earlier run", sid, len(atoms))
                return {"structure_id": sid, **prev, "cached": True}
        struct = workdir / f"{sid}.extxyz"
        write(struct, atoms, format="extxyz")
        job = {"structure": str(struct), "settings": asdict(settings),
               "txt": str(workdir / f"{sid}.gpaw.txt"), "result": str(result),
               "input_key": input_key}
        job_path = workdir / f"{sid}.job.json"
        job_path.write_text(json.dumps(job))
        if result.exists():
            result.unlink()
        cmd = [*mpi_command.split(), python, "-m", "vitriflow.dft.gpaw_backend", str(job_path)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=settings.timeout_s)
            if result.is_file():
                res = json.loads(result.read_text())
            else:
                tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
                res = {"energy_eV": float("nan"), "status": "failed",
                       "reason": f"GPAW process exited with code {proc.returncode}: "
                                 f"{' | '.join(tail)}"}
        except subprocess.TimeoutExpired:
            res = {"energy_eV": float("nan"), "status": "failed",
                   "reason": f"timed out after {settings.timeout_s:g} s"}
        res.setdefault("wall_s", time.perf_counter() - t0)
        log.info("%s (%d atoms): %s %s in %.1f s", sid, len(atoms), res["status"],
                 f"E={res['energy_eV']:.6f} eV" if res["status"] == "ok" else res.get("reason", ""),
                 res["wall_s"])
        return {"structure_id": sid, **res, "cached": False}

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(one, frames))
    run = {"wall_s": {r["structure_id"]: float(r.get("wall_s", float("nan"))) for r in rows},
           "cached": [r["structure_id"] for r in rows if r["cached"]]}
    df = pd.DataFrame(rows).drop(columns=["wall_s", "cached"], errors="ignore")
    df["n_atoms"] = [len(a) for a in frames]
    df["energy_per_atom_eV"] = df["energy_eV"] / df["n_atoms"]
    for col in ("kpts", "hubbard_u"):
        if col in df:
            df[col] = df[col].map(
                lambda v: json.dumps(v)
                if v is not None and not (isinstance(v, float) and np.isnan(v)) else "")
    return df, run


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv[1]))
