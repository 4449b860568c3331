"""VASP for clusters: MP-compatible inputs from pymatgen, one job directory per structure.

Layout under ``<root>`` (``results/dft/{system}/vasp``)::

    <structure_id>/INCAR, KPOINTS, POSCAR, POTCAR (or POTCAR.spec), vitriflow_job.json
    <structure_id>/vasprun.xml ...         written by VASP when the run rule executes

Inputs come from ``MPStaticSet`` (single point on the given geometry, the default, so the MLIP
and DFT see identical atoms) or ``MPRelaxSet`` (full relaxation, as in Aykol et al.), so ENCUT,
PREC, EDIFF, LASPH, POTCARs, MAGMOM and the GGA+U values are the Materials Project's and the
energies can be mixed with MP data after MP2020 corrections. POTCARs are written when pymatgen
finds ``PMG_VASP_PSP_DIR``; otherwise ``POTCAR.spec`` lists the symbols and the run rule refuses
to start. Nothing here fabricates VASP output: ``parse_jobs`` reads what VASP wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from vitriflow.io import atomic_path, structure_key

log = logging.getLogger(__name__)

INPUT_SETS = ("static", "relax")


def have_potcars() -> bool:
    """Whether pymatgen knows where the VASP POTCAR library is (PMG_VASP_PSP_DIR)."""
    from pymatgen.core import SETTINGS

    d = SETTINGS.get("PMG_VASP_PSP_DIR") or os.environ.get("PMG_VASP_PSP_DIR")
    return bool(d) and Path(d).is_dir()


def input_set(atoms: Atoms, kind: str = "static", user_incar_settings: Mapping | None = None):
    """The pymatgen MP input set for one structure."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from pymatgen.io.vasp.sets import MPRelaxSet, MPStaticSet

    if kind not in INPUT_SETS:
        raise ValueError(f"dft.vasp.input_set: expected one of {INPUT_SETS}, got {kind!r}")
    structure = AseAtomsAdaptor.get_structure(atoms)
    cls = MPStaticSet if kind == "static" else MPRelaxSet
    return cls(structure, user_incar_settings=dict(user_incar_settings or {}))


def write_jobs(
    frames: Sequence[Atoms],
    root: str | os.PathLike,
    kind: str = "static",
    user_incar_settings: Mapping | None = None,
    potcar_spec: bool | None = None,
) -> pd.DataFrame:
    """Write one VASP job directory per frame; returns the job table (structure_id, dir, ...).

    A job directory written earlier for another geometry or input set under the same id (after
    an MD or selection rerun), or one whose ``vitriflow_job.json`` is missing or unreadable, is
    moved to ``_stale/`` with its outputs, so its vasprun.xml is never taken for the new
    structure; ``selection.json`` lists the current jobs, the only ones ``run_jobs`` and
    ``parse_jobs`` read.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    spec = (not have_potcars()) if potcar_spec is None else potcar_spec
    rows = []
    for atoms in frames:
        sid = str(atoms.info["structure_id"])
        d = root / sid
        vis = input_set(atoms, kind, user_incar_settings)
        key = hashlib.sha256(json.dumps([structure_key(atoms), type(vis).__name__,
                                         dict(user_incar_settings or {})],
                                        sort_keys=True, default=str).encode()).hexdigest()[:16]
        try:
            old_key = (json.loads((d / "vitriflow_job.json").read_text()).get("input_key", "old")
                       if d.is_dir() else key)
        except (OSError, ValueError, AttributeError):
            # no readable metadata: its outputs may be another geometry's
            old_key = "unknown"
        if old_key != key:
            stale = root / "_stale" / f"{sid}-{old_key}"
            stale.parent.mkdir(exist_ok=True)
            shutil.rmtree(stale, ignore_errors=True)
            d.rename(stale)
            log.warning("%s: inputs changed; the previous job directory is kept in %s", sid, stale)
        vis.write_input(str(d), potcar_spec=spec)
        meta = {"structure_id": sid, "role": atoms.info.get("role", ""), "n_atoms": len(atoms),
                "input_set": type(vis).__name__, "potcar_spec": spec, "input_key": key}
        (d / "vitriflow_job.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        rows.append({**meta, "dir": str(d)})
    with atomic_path(root / "selection.json") as tmp:
        Path(tmp).write_text(json.dumps([r["structure_id"] for r in rows], indent=1))
    return pd.DataFrame(rows)


def _job_files(root: str | os.PathLike) -> list[Path]:
    """vitriflow_job.json of the jobs of the current selection (every job folder for roots
    written before selection.json existed)."""
    root = Path(root)
    listed = root / "selection.json"
    if listed.is_file():
        try:
            ids = json.loads(listed.read_text())
            if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                raise ValueError("expected a list of structure ids")
        except (OSError, ValueError) as exc:
            # the index of the whole system: one line, not a traceback
            raise ValueError(f"{listed}: unreadable ({type(exc).__name__}: {exc}); rerun "
                             "the dft_vasp_inputs rule, which rewrites it (finished jobs "
                             "are kept)") from exc
        return [root / sid / "vitriflow_job.json" for sid in ids]
    return sorted(root.glob("*/vitriflow_job.json"))


JOB_KEYS = ("structure_id", "n_atoms", "input_set", "potcar_spec")


def _job_meta(job: Path) -> dict:
    """A job's ``vitriflow_job.json``; ValueError saying why when it is missing or unreadable."""
    try:
        meta = json.loads(job.read_text())
        missing = [k for k in JOB_KEYS if k not in meta]
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{job.name} missing or unreadable ({type(exc).__name__}: {exc}); "
                         "rerun dft_vasp_inputs") from exc
    if missing:
        raise ValueError(f"{job.name} lacks {', '.join(missing)}; rerun dft_vasp_inputs")
    return meta


def run_jobs(root: str | os.PathLike, command: str | None = None,
             timeout_s: float | None = None) -> tuple[pd.DataFrame, dict]:
    """Run ``$VASP_COMMAND`` in every job directory lacking a finished ``vasprun.xml``.

    Returns the run table (``structure_id``, ``run_status`` 'done' | 'failed', ``reason``), the
    same for a fresh run and a rerun, and the run record ``{"ran": [structure_id, ...],
    "wall_s": {structure_id: s}}`` of the jobs run this time, for provenance. A job that exits
    non-zero, times out or whose ``vitriflow_job.json`` is missing or unreadable is a failed row
    and the others still run.
    """
    command = command or os.environ.get("VASP_COMMAND", "")
    if not command:
        raise RuntimeError("VASP_COMMAND is not set: export e.g. VASP_COMMAND='srun vasp_std' in "
                           "the cluster profile")
    rows, wall = [], {}
    for job in _job_files(root):
        d, sid = job.parent, job.parent.name
        try:
            meta = _job_meta(job)
        except ValueError as exc:
            # a job without its metadata is a failed row; the others still run
            log.warning("%s: %s", sid, exc)
            rows.append({"structure_id": sid, "run_status": "failed", "reason": str(exc)})
            continue
        if meta.get("potcar_spec") or not (d / "POTCAR").is_file():
            rows.append({"structure_id": sid, "run_status": "failed",
                         "reason": "no POTCAR (only POTCAR.spec): set PMG_VASP_PSP_DIR and "
                                   "regenerate inputs"})
            continue
        if _finished(d / "vasprun.xml"):
            rows.append({"structure_id": sid, "run_status": "done", "reason": ""})
            continue
        t0 = time.perf_counter()
        try:
            with open(d / "vasp.out", "w") as out:
                proc = subprocess.run(shlex.split(command), cwd=d, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=timeout_s)
            status = "done" if proc.returncode == 0 else "failed"
            reason = ("" if proc.returncode == 0
                      else f"exit code {proc.returncode} (see {d / 'vasp.out'})")
        except subprocess.TimeoutExpired:
            status, reason = "failed", f"timed out after {timeout_s} s"
        wall[sid] = time.perf_counter() - t0
        rows.append({"structure_id": sid, "run_status": status, "reason": reason})
    return (pd.DataFrame(rows, columns=["structure_id", "run_status", "reason"]),
            {"ran": list(wall), "wall_s": wall})


def _finished(vasprun: Path) -> bool:
    return vasprun.is_file() and "</modeling>" in vasprun.read_text(errors="ignore")[-200:]


def parse_jobs(root: str | os.PathLike, mp2020: bool = True) -> pd.DataFrame:
    """Energies from each job's ``vasprun.xml`` (pymatgen ``Vasprun``), with MP2020 corrections.

    ``energy_eV`` is the raw VASP energy; ``energy_corrected_eV`` adds the MP2020 anion/U
    corrections (used for formation energies when ``mp2020`` is on). Missing, unfinished,
    unparsable or unconverged runs are rows with ``status`` 'failed' and the reason; the other
    jobs are still read.
    """
    compat = None
    if mp2020:
        from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

        compat = MaterialsProject2020Compatibility(check_potcar=False)
    rows = []
    for job in _job_files(root):
        row = {"structure_id": job.parent.name, "n_atoms": np.nan, "energy_eV": np.nan,
               "energy_corrected_eV": np.nan, "status": "failed", "reason": ""}
        try:
            meta = _job_meta(job)
        except ValueError as exc:  # a job without its metadata is a failed row, not a failed parse
            row["reason"] = str(exc)
            log.warning("%s: %s", row["structure_id"], row["reason"])
            rows.append(row)
            continue
        row["n_atoms"] = meta["n_atoms"]
        try:
            row.update(_parse_one(job.parent / "vasprun.xml", meta, compat))
        except Exception as exc:  # one bad vasprun.xml is a failed row, not a failed parse
            row["reason"] = f"vasprun.xml unreadable ({type(exc).__name__}: {exc})"
            log.warning("%s: %s", meta["structure_id"], row["reason"])
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        df["energy_per_atom_eV"] = df["energy_corrected_eV"] / df["n_atoms"]
    return df


def _parse_one(vasprun: Path, meta: Mapping, compat) -> dict:
    """Energies, status and reason of one job; raises when its vasprun.xml cannot be read."""
    from pymatgen.io.vasp import Vasprun

    if not _finished(vasprun):
        return {"reason": "no finished vasprun.xml"}
    vr = Vasprun(str(vasprun), parse_potcar_file=False, parse_dos=False, parse_eigen=False)
    entry = vr.get_computed_entry(inc_structure=True, entry_id=meta["structure_id"])
    if not np.isfinite(entry.uncorrected_energy):  # pymatgen's inf for a run without an ionic step
        return {"reason": "vasprun.xml has no total energy"}
    out = {"energy_eV": float(entry.uncorrected_energy),
           "energy_corrected_eV": float(entry.uncorrected_energy)}
    if compat is not None:
        processed = compat.process_entry(entry)
        out["energy_corrected_eV"] = float(processed.energy) if processed is not None else np.nan
        if processed is None:
            out["reason"] = "MP2020 compatibility rejected the entry"
    if not (vr.converged_electronic and (meta["input_set"] == "MPStaticSet" or vr.converged_ionic)):
        return {**out, "reason": "electronic or ionic loop not converged"}
    return {**out, "status": "failed" if out.get("reason") else "ok"}
