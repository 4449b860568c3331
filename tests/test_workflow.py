"""A tiny end-to-end DAG run (classical potential, 24 atoms, a few dozen steps) in a temp folder,
then rebuilding one named target."""

import os
import subprocess
import sys

import pytest
from workflow_helpers import REPO, TINY, snakemake, write_config

from vitriflow.io import read_csv, read_table


@pytest.fixture
def run(tiny_run):
    return tiny_run


def test_demo_dag_writes_report_and_tables(run):
    html = (run / "results/report/index.html").read_text()
    assert "Run summary" in html and "Melt-quench MD" in html and "Structure analysis" in html
    assert "Properties vs experiment" in html
    elastic, _ = read_table(run / "results/properties/tiny_silica/elastic.parquet")
    assert list(elastic["status"]) == ["ok", "ok"] and (elastic["youngs_modulus_GPa"] > 0).all()
    parity, _ = read_table(run / "results/properties/comparison.parquet")
    silica = parity[(parity["property"] == "density") & parity["exp_value"].notna()]
    assert len(silica) and (silica["exp_value"] - 2.2).abs().max() < 0.01  # vitreous silica
    summary, prov = read_table(run / "results/md/tiny_silica/summary.parquet")
    assert list(summary["structure_id"]) == ["tiny_silica-c0000-r00", "tiny_silica-c0000-r01"]
    assert prov["stage"] == "md" and prov["potential"] == "teter" and "packages" in prov
    refs, _ = read_table(run / "results/references/tiny_silica.parquet")
    assert set(refs["source"]) == {"subset"}  # the shipped Materials Project subset
    assert (run / "results/analysis/tiny_silica/rdf.parquet").is_file()
    for rule_log in ("logs/md/tiny_silica.log", "logs/structures/tiny_silica.log"):
        assert (run / rule_log).is_file()
    # the "At a glance" panel: every structure survived; real crystal references, not estimates
    glance = html[html.index('id="at-a-glance"'):html.index('id="run-summary"')]
    assert ("2 of 2 ok" in glance and "MD throughput, teter" in glance
            and "Crystal references" not in glance)
    # one composition: the GNN stage says why it did not train, and its model file says so too
    assert "GNN surrogate skipped" in html and "gnn.min_compositions is 3" in html
    from vitriflow.surrogates.gnn import GNNRegressor
    with pytest.raises(ValueError, match="the gnn stage was skipped"):
        GNNRegressor.load(run / "results/surrogates/gnn/model.pt")


def test_single_target_is_rebuilt_by_name(run):
    target = run / "results/structures/tiny_silica/compositions.parquet"
    before, _ = read_table(target)
    target.unlink()
    proc = snakemake(run, "results/structures/tiny_silica/compositions.parquet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after, _ = read_table(target)
    assert before.equals(after)  # deterministic: same seed, same cells


def _slurm_dry_run(tmp_path, env):
    write_config(tmp_path, TINY)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--profile",
           str(REPO / "profiles" / "slurm"), "-n", "results/md/tiny_silica/summary.parquet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (proc.stdout.split("rule md:")[1].split("\n\n")[0],
            proc.stdout.split("rule structures:")[1].split("\n\n")[0])


def test_slurm_profile_takes_site_settings_from_the_environment(tmp_path):
    """Up to the scheduler boundary (the real scheduler runs in test_slurm.py): by default md
    asks for a GPU on the gpu partition and CPU rules for the cluster's defaults; the same
    profile serves a CPU-only cluster with VITRIFLOW_SLURM_GPUS=0, and takes account and
    partitions from the environment."""
    md, cpu = _slurm_dry_run(tmp_path, {})
    assert "gpu=1" in md and "slurm_partition=gpu" in md
    assert "slurm_partition" not in cpu and "slurm_account" not in cpu
    md, cpu = _slurm_dry_run(tmp_path, {"VITRIFLOW_SLURM_GPUS": "0", "SLURM_ACCOUNT": "glass",
                                        "VITRIFLOW_SLURM_PARTITION": "short"})
    assert "gpu=" not in md and "slurm_partition=short" in md and "slurm_account=glass" in md
    assert "slurm_partition=short" in cpu and "slurm_account=glass" in cpu


def test_viscosity_chain_with_task_groups(tmp_path):
    """ingest -> train (two task groups, tiny networks) -> evaluate against i-Melt -> predict ->
    report section, through snakemake on the real i-Melt database."""
    groups = [{"properties": ["viscosity", "tg", "sconf_tg", "cp_liquid", "density"]},
              {"properties": ["refractive_index", "liquidus", "elastic_modulus", "cte",
                              "abbe_number"], "hidden": 4}]
    cfg = {**TINY, "viscosity": {
        "mode": "demo", "device": "cpu", "threads": 1,
        "model": {"n_models": 1, "hidden": 8, "max_epochs": 3, "task_groups": groups},
        "predict": {"compositions": [{"label": "NS3", "sio2": 75, "na2o": 25}],
                    "temperatures_K": [1000, 1400]}}}
    write_config(tmp_path, cfg)
    section = "results/report/sections/60_viscosity.html"
    proc = snakemake(tmp_path, "results/surrogates/viscosity/comparison.csv",
                     "results/surrogates/viscosity/predictions.parquet", section)
    assert proc.returncode == 0, proc.stderr[-4000:]

    from vitriflow.surrogates.viscosity import ViscositySurrogate

    cmp, cmp_prov = read_csv(tmp_path / "results/surrogates/viscosity/comparison.csv")
    assert cmp_prov["stage"] == "viscosity_evaluate" and "bootstrap_seed" in cmp_prov
    assert {"viscosity:ag", "density", "refractive_index", "liquidus"} <= set(cmp["target"])
    assert ({"n_compositions", "diff_ci_low", "diff_ci_high", "p_vitriflow_lower"}
            <= set(cmp.columns))
    assert (cmp["diff_ci_low"] <= cmp["diff_ci_high"]).all()
    shares = cmp[["worst_melt_share_vitriflow", "worst_melt_share_i-Melt"]]
    assert ((shares > 0) & (shares <= 1)).all().all()
    assert "worst melt's share of squared error" in (tmp_path / section).read_text()
    model = ViscositySurrogate.load(tmp_path / "results/surrogates/viscosity/model.pt")
    assert [props for props, _ in model.groups_] == [g["properties"] for g in groups]
    pred, _ = read_table(tmp_path / "results/surrogates/viscosity/predictions.parquet")
    assert (len(pred) == 2
            and pred[["viscosity_ag", "tg", "density", "refractive_index"]].notna().all().all())
    assert pred["viscosity_ag"].iloc[0] > pred["viscosity_ag"].iloc[1]  # 1000 K is more viscous
    # removed once the model is saved
    assert not (tmp_path / "results/surrogates/viscosity/checkpoints").exists()
    cover, _ = read_csv(tmp_path / "results/surrogates/viscosity/uncertainty.csv")
    # calibrated on the composition-grouped out-of-fold predictions of train + valid
    vis = cover.set_index("target").loc["viscosity:ag"]
    assert vis["n"] == 626 and vis["n_calibration"] > 5 * vis["n"] and vis["a"] >= 1.0
    assert vis["cover_95"] >= vis["spread_cover_95"]
    html = (tmp_path / section).read_text()
    assert "Is the uncertainty honest?" in html and "cover_95" in html
    assert ("one bagged ensemble per task group" in html and "P(vitriflow lower)" in html
            and "Paired bootstrap over test compositions" in html)
    raman, _ = read_table(tmp_path / "results/surrogates/viscosity/data/raman.parquet")
    assert raman["spectrum_id"].nunique() == 258 and "258 Raman spectra" in html
    dom = read_csv(tmp_path / "results/surrogates/viscosity/domain.csv")[0].set_index("target")
    counts = cmp.set_index("target")["n"]
    # every test row, once
    assert (dom["n_inside"] + dom["n_beyond"]).eq(counts.loc[dom.index]).all()
    assert (dom.loc["viscosity:ag", "n_beyond"] > 0
            and "beyond 5 mol% of the nearest training melt" in html)
    # NS3 is well measured
    assert pred["viscosity_nearest_mol"].iloc[0] == pred["viscosity_nearest_mol"].iloc[1] < 5
