"""The workflow through a real SLURM scheduler: a one-node cluster on localhost
(scripts/slurm-local), the project's profiles/slurm with the CPU-cluster settings
(VITRIFLOW_SLURM_GPUS=0, memory requests capped to the node), snakemake-executor-plugin-slurm
submitting every job with sbatch.

Skips with the reason when the cluster cannot start here (not root, no apt-get); CI runs it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from workflow_helpers import REPO, TINY, snakemake_env, write_config

SLURM_LOCAL = REPO / "scripts" / "slurm-local"
TARGET = "results/report/index.html"
# the CPU-cluster override of the profile, and a quick first status check for a small DAG
CPU_CLUSTER = {"VITRIFLOW_SLURM_GPUS": "0", "VITRIFLOW_SLURM_MAX_MEM_MB": "4000"}
FAST = ["--slurm-init-seconds-before-status-checks", "5", "--jobs", "4", "--retries", "0"]


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("scripts/slurm-local needs root to start munged, slurmctld and slurmd")
    up = subprocess.run([str(SLURM_LOCAL), "up"], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        pytest.skip(f"no local SLURM cluster: {up.stderr.strip().splitlines()[-1:]}")
    conf = re.search(r"SLURM_CONF=(\S+)", up.stdout)
    env = {"SLURM_CONF": conf.group(1)} if conf else {}
    yield env
    down = subprocess.run([str(SLURM_LOCAL), "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    for _ in range(20):  # a daemon may take a moment to leave the process table
        ps = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout.split()
        left = {"slurmctld", "slurmd", "munged"} & set(ps)
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"{left} outlived slurm-local down"


def _snakemake_slurm(workdir: Path, env: dict, *args: str, background: bool = False):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), "--profile",
           str(REPO / "profiles" / "slurm"), *FAST, *args]
    full_env = {**snakemake_env(), **CPU_CLUSTER, **env}
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=full_env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=full_env)


def _submitted(log: str) -> list[str]:
    return re.findall(r"submitted with SLURM jobid (\d+)", log)


def test_workflow_runs_through_slurm_and_matches_a_local_run(cluster, tiny_run, tmp_path):
    work = tmp_path / "slurm"
    work.mkdir()
    write_config(work, TINY)
    t0 = time.perf_counter()
    proc = _snakemake_slurm(work, cluster, TARGET)
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    jobs = _submitted(log)
    stats = re.search(r"Job stats:.*?\ntotal\s+(\d+)", log, re.S)
    local_rules = len(re.findall(r"^localrule \w+:", log, re.M))
    print(f"SLURM run: {len(jobs)} SLURM jobs (ids {jobs[0]}-{jobs[-1]}), {local_rules} local, "
          f"{wall:.0f} s")
    # every job but the local ones (the target rule, dataset copies) went through sbatch
    assert stats and len(jobs) == int(stats.group(1)) - local_rules and len(jobs) >= 8
    compare = subprocess.run([sys.executable, str(REPO / "scripts" / "compare-results"),
                              str(tiny_run / "results"), str(work / "results")],
                             capture_output=True, text=True)
    assert compare.returncode == 0, compare.stdout[-3000:]


def test_cancelled_job_fails_and_is_rerun(cluster, tmp_path):
    """scancel on a running job: Snakemake reports it failed; --rerun-incomplete reruns it."""
    work = tmp_path / "cancel"
    work.mkdir()
    cfg = {**TINY, "protocols": {"tiny": {**TINY["protocols"]["tiny"], "stages": [
        {"name": "melt", "steps": 3000, "temperature_K": 3000},
        {"name": "quench", "steps": 20, "temperature_K": [3000, 300]}]}}}
    write_config(work, cfg)
    target = "results/md/tiny_silica/summary.parquet"
    run = _snakemake_slurm(work, cluster, target, background=True)
    env = {**os.environ, **cluster}
    cancelled, deadline = None, time.time() + 600
    while cancelled is None and time.time() < deadline and run.poll() is None:
        q = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True,
                           env=env)
        for line in q.stdout.splitlines():
            jobid, name, state = line.split()[:3]
            if state == "RUNNING" and (work / "logs/md").is_dir():  # the md job is running
                subprocess.run(["scancel", jobid], check=True, env=env)
                cancelled = jobid
        time.sleep(2)
    log = run.communicate(timeout=600)[0]
    assert cancelled, log[-3000:]
    assert run.returncode != 0 and "CANCELLED" in log, log[-3000:]
    rerun = _snakemake_slurm(work, cluster, target, "--rerun-incomplete")
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert (work / target).is_file()
