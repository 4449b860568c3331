"""The GPU validation pack's device run, end to end on the CPU at tiny sizes, and the results
script on what it returns.

The device script runs with this environment's packages cut down to those the device has plus
the pack's (``device_env.simulated_site``, ``python -S``), so an import the device could not
satisfy (pymatgen, ...) fails here too. One run stops the silica part at a 1 s limit; a second
run of that part alone stands for the rerun; the results script merges both.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / "benchmarks" / "gpu_pack"
SHARED_DATA = REPO.parent / "shared" / "data"
pytestmark = pytest.mark.slow
TINY_SIZES = [1, 2, 4]  # device_run.THROUGHPUT_TINY batch sizes


def _status(out: Path, part: str) -> dict:
    with tarfile.open(out / f"{part}.tar.gz") as tf:
        return json.load(tf.extractfile(f"{part}/status.json"))


def _members(out: Path, part: str) -> set[str]:
    with tarfile.open(out / f"{part}.tar.gz") as tf:
        return set(tf.getnames())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_pack")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    inputs = tmp / "inputs"
    prep = subprocess.run([sys.executable, str(PACK / "prepare_inputs.py"), str(inputs), "--tiny",
                           "--references", "subset"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-3000:]
    sys.path.insert(0, str(PACK))
    try:
        from device_env import simulated_site
    finally:
        sys.path.remove(str(PACK))
    site = simulated_site(tmp / "device_site")
    base = {**env, "PYTHON": f"{sys.executable} -S", "PYTHONPATH": str(site),
            "VF_WORK": str(tmp / "work")}

    def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(PACK / "run_on_device.sh"), "--device", "cpu", "--tiny",
                               "--no-pack", "--inputs", str(inputs), *extra],
                              env={**base, "OUT": str(out)}, cwd=REPO, capture_output=True,
                              text=True, timeout=900)

    first = run(tmp / "out_first", "--limit", "silica=1")
    rerun = run(tmp / "out_rerun", "--parts", "silica")
    return {"tmp": tmp, "inputs": inputs, "first": first, "rerun": rerun}


def test_inputs_carry_every_chemistry_and_a_resolved_protocol(runs):
    record = json.loads((runs["inputs"] / "inputs.json").read_text())
    systems = record["dftval"]["systems"]
    assert set(systems) == {"val_li2o_sio2", "val_li_si", "val_ge_te", "val_cu_zr"}
    assert all(s["n_structures"] == 1 and s["atoms_per_cell"] <= 16 for s in systems.values())
    stages = record["silica"]["protocol"]["resolved"]["stages"]
    assert [s["name"] for s in stages] == ["melt", "quench", "npt", "anneal"]
    assert stages[2]["ensemble"] == "npt"


def test_a_stopped_part_leaves_the_others_results(runs):
    proc, out = runs["first"], runs["tmp"] / "out_first"
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # one part not ok
    files = sorted(p.name for p in out.iterdir())
    assert files == ["dftval.tar.gz", "env.json", "run.log", "silica.tar.gz", "summary.txt",
                     "throughput.tar.gz"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", f) for f in files)  # what the device returns
    assert _status(out, "silica")["status"] == "timed out"
    assert "silica ended: exit 124" in (out / "run.log").read_text()
    assert _status(out, "throughput")["status"] == "ok"
    assert _status(out, "dftval")["status"] == "ok"
    with tarfile.open(out / "throughput.tar.gz") as tf:
        rows = [json.loads(line) for line in
                tf.extractfile("throughput/throughput.jsonl").read().decode().splitlines()]
    assert [(r["path"], r["systems"]) for r in rows] == [("ase", 1)] + [
        ("batched", n) for n in TINY_SIZES]
    assert all(r["atom_steps_per_s"] > 0 and not r["note"] for r in rows)
    assert {r["cueq"] for r in rows} == {False}  # no cuEquivariance on the CPU
    members = _members(out, "dftval")
    for system in ("val_li2o_sio2", "val_li_si", "val_ge_te", "val_cu_zr"):
        for name in ("quenched.extxyz", "trace.parquet", "summary.parquet", "references.parquet",
                     "crystals.extxyz"):
            assert f"dftval/{system}/{name}" in members
    env = json.loads((out / "env.json").read_text())
    assert env["device"] == "cpu" and env["hide"] == []


def test_rerun_of_the_stopped_part(runs):
    proc, out = runs["rerun"], runs["tmp"] / "out_rerun"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    status = _status(out, "silica")
    assert status["status"] == "ok" and status["ok"] == 1 and status["samples"] == 4
    assert {"silica/quenched.extxyz", "silica/samples.extxyz", "silica/trace.parquet"} <= \
        _members(out, "silica")
    assert not (out / "throughput.tar.gz").exists()


def test_results_tables_from_both_runs(runs):
    tmp = runs["tmp"]
    mirror = os.environ.get("VITRIFLOW_DATA_MIRROR") or (
        str(SHARED_DATA) if SHARED_DATA.is_dir() else "")
    cmd = [sys.executable, str(REPO / "benchmarks" / "gpu_results.py"), str(tmp / "out_first"),
           str(tmp / "out_rerun"), "--work", str(tmp / "results"), "--dft", "quick",
           "--dft-systems", "val_li_si", "--threads", "1", "--cache-dir", str(tmp / "cache")]
    if mirror:
        cmd += ["--data-mirror", mirror]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert (tmp / "results" / "results.md").read_text().strip() == text.strip()
    # throughput: the baseline and every batch size, with the same-run ratio to ASE
    assert "| ASE calculator, one cell at a time | off | 1 | 12 |" in text
    for n in TINY_SIZES:
        assert re.search(rf"\| torch-sim batched \| off \| {n} \| {12 * n} \| [0-9.,]+ \| "
                         r"[0-9.]+ \|", text)
    # silica from the rerun, analysed here
    density = re.search(r"\| density \(g/cm³\) \| ([0-9.]+) \| — \| 2\.20 \|", text)
    assert density and 1.0 < float(density.group(1)) < 4.0
    assert re.search(r"\| CN Si–O \| [0-9.]+ \|", text)
    if mirror:
        assert re.search(r"\| R_χ vs NIMROD F\(Q\) \| [0-9.]+ \|", text)
    # DFT: one silicide through selection, SevenNet-0 and GPAW, beside Table 1
    assert "Quick smoke settings" in text
    assert re.search(r"\| silicides \| 1 \| [-0-9.,]+ \| [-0-9.,]+ \| [-0-9.,]+ \| [-0-9.,]+ \| "
                     r"27 \|", text)
    assert re.search(r"\| overall \| 1 \| .* \| 38 \|", text)
    results = json.loads((tmp / "results" / "results.json").read_text())
    assert results["dft"]["n_amorphous"] == 1 and results["dft"]["n_dft_ok"] == 3
    assert results["sources"]["silica"].endswith("out_rerun")
    assert results["sources"]["throughput"].endswith("out_first")


def test_bad_option_and_missing_output_are_one_line_errors(tmp_path):
    proc = subprocess.run(["bash", str(PACK / "run_on_device.sh"), "--limit", "silica=soon"],
                          env={**os.environ, "OUT": str(tmp_path / "out")}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 100
    assert proc.stderr.strip().count("\n") == 0 and "--limit" in proc.stderr
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_results.py"),
                           str(tmp_path / "nothing"), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("gpu_results: ")
    assert "nothing: no such folder" in proc.stderr
