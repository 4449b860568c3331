"""Physical check of the whole chain on the CPU: a Teter SiO2 glass of 300+ atoms, packed, melted,
quenched and relaxed by vitriflow.md, has a network of tetrahedral silicon (CN 4.0 +/- 0.1) with
the Si-O first peak at 1.60-1.65 Å."""

import pytest

from vitriflow.analysis import AnalysisSettings, analyze_system
from vitriflow.md import Protocol, run_melt_quench
from vitriflow.potentials import load_model
from vitriflow.structures.packing import PackingRequest, pack

QUENCH = {
    "timestep_fs": 1.0,
    "stages": [
        {"name": "melt", "steps": 1000, "temperature_K": 4000},
        {"name": "quench", "steps": 1500, "temperature_K": [4000, 300]},
        {"name": "anneal", "steps": 300, "temperature_K": 300},
    ],
    "checkpoint_every": 500,
    "log_every": 100,
}


@pytest.mark.slow
def test_teter_silica_glass_is_tetrahedral(tmp_path):
    # 104 SiO2 units = 312 atoms at the density of silica glass (2.2 g/cm3 = 15.1 Å^3/atom)
    cell = pack([PackingRequest({"Si": 104, "O": 208}, 15.1, 2026,
                                {"structure_id": "teter-sio2", "seed": 2026})])
    final, _ = run_melt_quench(cell, load_model("teter"), Protocol.from_config(QUENCH),
                               tmp_path / "ck.pt", progress=False)
    assert final[0].info["status"] == "ok", final[0].info
    settings = AnalysisSettings.from_config(dict(r_max=6.0, experimental_fq=None))
    result = analyze_system(final, settings, "teter")
    props = result.properties.iloc[0]
    assert props["cn_Si_O"] == pytest.approx(4.0, abs=0.1)
    assert 1.60 <= props["rpeak_O_Si"] <= 1.65


@pytest.mark.slow
def test_md_sodium_silicate_has_the_charge_balance_nbo_per_tetrahedron(tmp_path):
    """Na2O-3SiO2 glasses (Teter, two replicas of 108 atoms) made by the MD: non-bridging oxygens
    per tetrahedron from their Qn equal the charge-balance value 2 x Na2O / SiO2 = 0.667 within
    the replica spread (or 0.05, the resolution of one NBO in a 36-tetrahedron cell)."""
    import numpy as np

    from vitriflow import glass_density
    from vitriflow.properties.network import nbo_per_t_charge_balance, network_properties

    vpa = glass_density.volume_per_atom_A3({"Na2O": 25, "SiO2": 75})
    cells = pack([PackingRequest({"Na": 24, "Si": 36, "O": 84}, vpa, 7 + k,
                                 {"structure_id": f"ns3-r{k}", "seed": 7 + k}) for k in range(2)])
    quench = {**QUENCH, "stages": [{"name": "melt", "steps": 600, "temperature_K": 4000},
                                   {"name": "quench", "steps": 1000, "temperature_K": [4000, 300]}]}
    final, _ = run_melt_quench(cells, load_model("teter"), Protocol.from_config(quench),
                               tmp_path / "ck.pt", progress=False)
    assert all(a.info["status"] == "ok" for a in final)
    nbo = np.array([network_properties(a, rings=False).scalars["nbo_per_t"] for a in final])
    expected = nbo_per_t_charge_balance("Na2O-3SiO2")
    assert expected == pytest.approx(2 / 3)
    assert abs(nbo.mean() - expected) <= max(2 * nbo.std(ddof=1), 0.05), nbo
