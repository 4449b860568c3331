"""The properties stage's jobs and its comparison with measured glasses."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk

from vitriflow.config import ConfigError, with_defaults
from vitriflow.properties import stage


def _cristobalite_like():
    """An ideal SiO2 network (beta-cristobalite-like): O midway along every Si-Si bond of a
    diamond lattice, so every Si is four-coordinated and every O bridging."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    si = bulk("Si", "diamond", a=7.16, cubic=True)
    i, j, d = neighbor_list("ijD", si, 3.2)
    once = i < j  # each bond once: the list holds (i, j, D) and (j, i, -D)
    oxygens = si.positions[i[once]] + d[once] / 2
    atoms = Atoms(["Si"] * len(si) + ["O"] * len(oxygens),
                  positions=np.vstack([si.positions, oxygens]), cell=si.cell, pbc=True)
    atoms.wrap()
    atoms.info.update(structure_id="x-c0000-r00", system="x", label="SiO2", formula="SiO2",
                      composition_index=0, replica=0, potential="teter", status="ok")
    return atoms


def test_network_job_reads_a_perfect_network_and_passes_failures_through(shared_data, tmp_path):
    from vitriflow.datasets import fetch

    good = _cristobalite_like()
    assert good.get_chemical_formula() == "O16Si8"
    bad = good.copy()
    bad.info.update(structure_id="x-c0000-r01", replica=1, status="failed", reason="md: blew up")
    xray = fetch("xray_form_factors", tmp_path, shared_data)
    tables = stage.network_job([good, bad], with_defaults("properties")["network"],
                               with_defaults("analysis", {"r_max": 6.0}), str(xray))
    net = tables["network"].set_index("structure_id")
    assert net.at["x-c0000-r00", "status"] == "ok" and net.at["x-c0000-r01", "status"] == "failed"
    assert net.at["x-c0000-r01", "reason"] == "md: blew up"
    assert net.at["x-c0000-r00", "q4_Si"] == pytest.approx(1.0)
    assert (net.at["x-c0000-r00", "nbo_per_t"] == 0.0
            == net.at["x-c0000-r00", "nbo_per_t_charge_balance"])
    sx = tables["xray"]
    assert set(sx["structure_id"]) == {"x-c0000-r00"} and len(sx) > 100
    tail = sx.loc[sx["Q_invA"] > 20, "S_X"]
    assert abs(tail.mean() - 1.0) < 0.1  # S(Q) -> 1 at high Q


def test_density_of_a_cell_that_never_relaxed_is_not_compared():
    summary = pd.DataFrame({"structure_id": ["a", "b"], "label": ["SiO2", "SiO2"],
                            "potential": ["teter", "teter"], "status": ["ok", "failed"],
                            "density_g_cm3": [2.21, np.nan]})
    md = stage.md_long({"summary": summary})
    assert list(md["property"]) == ["density"] and md["value"].iloc[0] == 2.21
    assert stage.md_long({"summary": summary}, density_is_md=False).empty


def test_comparison_with_i_melt_finds_sodium_trisilicate():
    """NS3 is among the best-measured glasses: its MD values meet i-Melt's within 1 mol%."""
    from vitriflow.properties.experiment import load_measured

    md = pd.DataFrame({"structure_id": ["s0", "s1", "s0"], "composition": ["NS3"] * 3,
                       "potential": ["teter"] * 3, "property": ["density", "density", "tg"],
                       "value": [2.40, 2.44, 1400.0]})
    parity = stage.compare_with_experiment(md, {"NS3": {"Na2O": 0.25, "SiO2": 0.75}},
                                           load_measured(None), tolerance_mol=1.0)
    dens = parity[parity["property"] == "density"].iloc[0]
    assert dens["md_mean"] == pytest.approx(2.42) and dens["n_replicas"] == 2
    assert 2.38 < dens["exp_value"] < 2.46 and dens["exp_n"] >= 1
    assert np.isfinite(parity.loc[parity["property"] == "tg", "exp_value"]).all()


def test_tg_ranks_need_three_glasses_per_potential():
    parity = pd.DataFrame({"composition": list("abcd") + list("ab"), "property": "tg",
                           "potential": ["p"] * 4 + ["q"] * 2, "md_mean": [1, 2, 3, 4, 1, 2],
                           "exp_value": [10, 20, 30, 35, 5, 6], "exp_n": 1})
    ranks = stage.tg_ranks(parity).set_index("potential")
    assert ranks.at["p", "rho"] == pytest.approx(1.0) and ranks.at["p", "n"] == 4
    assert np.isnan(ranks.at["q", "rho"])


def test_check_config_names_unknown_systems_and_bad_schedules():
    from vitriflow.properties.checks import check_config

    run = SimpleNamespace(
        systems={"glass": None},
        config={"data": {"cache_dir": "resources", "mirror": None, "download": False}})
    out = check_config(with_defaults("properties", {"thermal": {"enabled": True}}), run)
    assert out["systems"] == {"network": ["glass"], "elastic": ["glass"], "thermal": ["glass"],
                              "transport": []}
    with pytest.raises(ConfigError,
                       match=r"properties.elastic.systems: \['nope'\] are not systems"):
        check_config(with_defaults("properties", {"elastic": {"systems": ["nope"]}}), run)
    with pytest.raises(ConfigError, match="properties.thermal.sample_every: 7 does not divide"):
        check_config(with_defaults("properties", {"thermal": {"enabled": True, "sample_every": 7}}),
                     run)
