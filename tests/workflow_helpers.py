"""The tiny workflow config the end-to-end tests run, and how they call Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data"

TINY = {
    "seed": 7,
    "device": "cpu",
    "references": {"snapshot": False},  # the shipped subset: fast, and enough for SiO2
    "protocols": {"tiny": {
        "timestep_fs": 1.0,
        "stages": [{"name": "melt", "steps": 20, "temperature_K": 3000},
                   {"name": "quench", "steps": 20, "temperature_K": [3000, 300]},
                   {"name": "npt", "ensemble": "npt", "steps": 10, "temperature_K": 300}],
        "checkpoint_every": 10, "log_every": 5, "relax": {"max_steps": 20}}},
    "systems": [{"name": "tiny_silica", "compositions": ["SiO2"], "atoms_per_cell": 24,
                 "replicas": 2, "potential": "teter", "protocol": "tiny"}],
    "analysis": {"r_max": 5.0},
    "properties": {"elastic": {"fmax_eV_A": 0.005, "cell_fmax_eV_A": 0.02}},
    "gnn": {"epochs": 2},
    "report": {"title": "tiny"},
}


def snakemake_env(mirror: bool = True) -> dict[str, str]:
    """The environment of a test's Snakemake run: the data mirror when ../shared is beside the
    checkout (as in CI), else none."""
    env = {k: v for k, v in os.environ.items() if k != "VITRIFLOW_DATA_MIRROR"}
    if mirror and MIRROR.is_dir():
        env["VITRIFLOW_DATA_MIRROR"] = str(MIRROR)
    return env


def write_config(workdir: Path, cfg: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: Path, *args: str, mirror: bool = True, timeout: int = 900,
              env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**snakemake_env(mirror), **(env or {})})
