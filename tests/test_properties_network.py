"""Network structure (Qn, O speciation, NBO/T, rings) on crystals with known answers, and the
X-ray-weighted S(Q).

Crystal structures are built from their published space-group operations and asymmetric
units, as deposited in the American Mineralogist Crystal Structure Database (AMCSD):

* alpha-quartz SiO2, P3_221: Levien, Prewitt & Weidner, Am. Mineral. 65 (1980) 920 (AMCSD 0000789)
* diopside CaMgSi2O6, C2/c: Thompson & Downs, Am. Mineral. 93 (2008) 177 (AMCSD 0004495)
* forsterite Mg2SiO4, Pbnm: Hazen, Am. Mineral. 61 (1976) 1280 (AMCSD 0000546)
* low albite NaAlSi3O8, C-1: Downs, Hazen & Finger, Am. Mineral. 79 (1994) 1042 (AMCSD 0001683)
* phlogopite KMg3(AlSi3)O10(OH)2, C2/m: Redhammer & Roth, Am. Mineral. 87 (2002) 1464
  (AMCSD 0002918); its mixed (Al,Si) tetrahedral site is taken as Si here (the topology, all
  Q3 sheets, does not depend on the occupancy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.geometry import cellpar_to_cell

from vitriflow.analysis.rdf import rdf
from vitriflow.analysis.scattering import partial_structure_factors
from vitriflow.properties.network import (
    FALLBACK_CUTOFFS,
    default_cutoffs,
    nbo_per_t_charge_balance,
    network_properties,
    ring_statistics,
    stack_results,
)
from vitriflow.properties.xray import (
    MissingFormFactor,
    form_factor,
    load_cromer_mann,
    xray_sq,
    xray_weights,
)

CUT = {("Si", "O"): 2.0, ("Al", "O"): 2.2}


def _expand(cellpar, ops, sites) -> Atoms:
    """Atoms of a crystal from its symmetry operations ('x,y,z' strings) and unique sites."""
    symbols, frac = [], []
    for el, xyz in sites:
        pts: list[np.ndarray] = []
        for op in ops:
            p = np.array(eval(op, {}, dict(zip("xyz", xyz, strict=True))), float) % 1.0
            if not any(np.abs((p - q + 0.5) % 1.0 - 0.5).max() < 1e-3 for q in pts):
                pts.append(p)
        symbols += [el] * len(pts)
        frac += pts
    return Atoms(symbols, scaled_positions=np.array(frac), cell=cellpar_to_cell(cellpar), pbc=True)


P3221 = ["x,y,z", "y,x,2/3-z", "-y,x-y,2/3+z", "-x,-x+y,1/3-z", "-x+y,-x,1/3+z", "x-y,-y,-z"]
C2C = ["x,y,z", "1/2+x,1/2+y,z", "x,-y,1/2+z", "1/2+x,1/2-y,1/2+z", "-x,y,1/2-z",
       "1/2-x,1/2+y,1/2-z", "-x,-y,-z", "1/2-x,1/2-y,-z"]
PBNM = ["x,y,z", "x,y,1/2-z", "-x,-y,1/2+z", "1/2+x,1/2-y,1/2+z", "1/2-x,1/2+y,1/2-z",
        "1/2-x,1/2+y,z", "1/2+x,1/2-y,-z", "-x,-y,-z"]
CM1 = ["x,y,z", "1/2+x,1/2+y,z", "-x,-y,-z", "1/2-x,1/2-y,-z"]
C2M = ["x,y,z", "1/2+x,1/2+y,z", "x,-y,z", "1/2+x,1/2-y,z", "-x,y,-z", "1/2-x,1/2+y,-z",
       "-x,-y,-z", "1/2-x,1/2-y,-z"]


def quartz() -> Atoms:
    return _expand([4.916, 4.916, 5.4054, 90, 90, 120], P3221,
                   [("Si", (0.4697, 0, 0)), ("O", (0.4135, 0.2669, 0.1191))])


def diopside() -> Atoms:
    return _expand([9.7397, 8.9174, 5.2503, 90, 105.866, 90], C2C, [
        ("Mg", (0, 0.90808, 0.25)), ("Ca", (0, 0.30148, 0.25)),
        ("Si", (0.28619, 0.09319, 0.22936)), ("O", (0.11554, 0.08690, 0.14186)),
        ("O", (0.36094, 0.25019, 0.31776)), ("O", (0.35073, 0.01744, 0.99543))])


def forsterite() -> Atoms:
    return _expand([4.752, 10.193, 5.977, 90, 90, 90], PBNM, [
        ("Si", (0.4262, 0.094, 0.25)), ("Mg", (0, 0, 0)), ("Mg", (0.9915, 0.2774, 0.25)),
        ("O", (0.7657, 0.0913, 0.25)), ("O", (0.2215, 0.4474, 0.25)),
        ("O", (0.2777, 0.1628, 0.0331))])


def albite() -> Atoms:
    return _expand([8.1372, 12.7870, 7.1574, 94.245, 116.605, 87.809], CM1, [
        ("Na", (0.26913, 0.98904, 0.14894)), ("Al", (0.00890, 0.16819, 0.20762)),
        ("Si", (0.00398, 0.82043, 0.23665)), ("Si", (0.69222, 0.11044, 0.31589)),
        ("Si", (0.68162, 0.88179, 0.36088)), ("O", (0.00615, 0.13166, 0.96889)),
        ("O", (0.59158, 0.99706, 0.27896)), ("O", (0.81370, 0.11011, 0.19504)),
        ("O", (0.81898, 0.85089, 0.25629)), ("O", (0.01239, 0.30185, 0.26901)),
        ("O", (0.02327, 0.69340, 0.22754)), ("O", (0.20643, 0.10894, 0.38631)),
        ("O", (0.18092, 0.86801, 0.42864))])


def phlogopite() -> Atoms:
    return _expand([5.3158, 9.2036, 10.31, 90, 99.891, 90], C2M, [
        ("Si", (0.57651, 0.16674, 0.22952)), ("Mg", (0, 0.5, 0.5)), ("Mg", (0, 0.83171, 0.5)),
        ("K", (0, 0, 0)), ("O", (0.83048, 0.22662, 0.17165)), ("O", (0.50995, 0, 0.17174)),
        ("O", (0.63068, 0.16673, 0.39172)), ("O", (0.13248, 0, 0.3988)),
        ("H", (0.111, 0, 0.318))])


def test_crystals_are_built_as_published():
    # formula and X-ray density of the deposited structures: a wrong symmetry operation or
    # coordinate would change both
    for atoms, formula, rho in [(quartz(), "O6Si3", 2.646), (diopside(), "Ca4Mg4O24Si8", 3.279),
                                (forsterite(), "Mg8O16Si4", 3.228),
                                (albite(), "Al4Na4O32Si12", 2.623)]:
        assert atoms.get_chemical_formula() == formula
        rho_x = atoms.get_masses().sum() / atoms.get_volume() * 1.66054  # g/cm3
        assert rho_x == pytest.approx(rho, abs=2e-3)


@pytest.mark.parametrize("build, former, q, nbo_t, comp", [
    (quartz, "Si", 4, 0.0, "SiO2"),
    (diopside, "Si", 2, 2.0, {"CaO": 25, "MgO": 25, "SiO2": 50}),
    (forsterite, "Si", 0, 4.0, "2MgO-SiO2"),
    (albite, "T", 4, 0.0, "(Na2O)0.125(Al2O3)0.125(SiO2)0.75"),
])
def test_qn_and_nbo_per_t_match_charge_balance(build, former, q, nbo_t, comp):
    res = network_properties(build().repeat(2), CUT, rings=False)
    s = res.scalars
    assert s[f"q{q}_{former}"] == 1.0
    assert sum(s[f"q{k}_{former}"] for k in range(5)) == pytest.approx(1.0)
    assert s["nbo_per_t"] == pytest.approx(nbo_t)
    assert s["nbo_per_t"] == pytest.approx(nbo_per_t_charge_balance(comp))
    assert s["o_free_frac"] == 0.0 and s["o_tri_frac"] == 0.0
    # every O is BO or NBO: 2 BO per Q4, so BO fraction = q/2 * T / O
    assert s["o_bo_frac"] + s["o_nbo_frac"] == pytest.approx(1.0)
    assert s["o_bo_frac"] == pytest.approx(q / 2 * s["n_T"] / s["n_O"])
    qn = res.qn[res.qn["former"] == former].set_index("n")["fraction"]
    assert qn[q] == 1.0


def test_albite_counts_four_coordinated_al_as_former():
    res = network_properties(albite(), CUT, rings=False)
    s = res.scalars
    assert s["cn4_frac_Al"] == 1.0 and s["former_frac_Al"] == 1.0
    assert s["q4_Al"] == 1.0 and s["q4_Si"] == 1.0
    assert s["n_T"] == s["n_Si"] + s["n_Al"]
    cn = res.cn.set_index("element")
    assert bool(cn.loc["Al", "is_former"]) and int(cn.loc["Al", "cn"]) == 4
    # if only octahedral Al were a former, AlO4 would become a modifier: its O turn NBO
    alt = network_properties(albite(), CUT, former_cn={"Al": (6,)}, rings=False).scalars
    assert alt["former_frac_Al"] == 0.0 and np.isnan(alt["q4_Al"])
    assert alt["n_T"] == s["n_Si"]
    assert alt["nbo_per_t"] == pytest.approx(4 * s["n_Al"] / s["n_Si"])  # 4 Al-O per Al
    assert alt["q4_Si"] < 1.0


def test_phlogopite_sheets_are_q3_with_free_hydroxyl_oxygen():
    s = network_properties(phlogopite(), CUT, rings=False).scalars
    assert s["q3_Si"] == 1.0 and s["nbo_per_t"] == pytest.approx(1.0)
    # per Si4O10(OH)2: 6 basal BO, 4 apical NBO, 2 OH oxygens bonded to no former
    assert s["o_bo_frac"] == pytest.approx(6 / 12)
    assert s["o_nbo_frac"] == pytest.approx(4 / 12)
    assert s["o_free_frac"] == pytest.approx(2 / 12)


def test_quartz_sp_rings_are_six_and_eight_membered():
    # each Si of alpha-quartz lies on 6 six-membered and 40 eight-membered shortest-path
    # rings (ring inventory of quartz, e.g. Marians & Hobbs, J. Non-Cryst. Solids 124 (1990)
    # 242): 6/6 = 1 six-ring and 40/8 = 5 eight-rings per Si
    for rep in (3, 4):
        res = network_properties(quartz().repeat(rep), CUT, max_ring_size=10)
        r = res.rings.set_index("size")
        assert list(r.index) == [6, 8]
        assert r.loc[6, "per_former"] == pytest.approx(1.0)
        assert r.loc[8, "per_former"] == pytest.approx(5.0)
        assert (r["n_vertices"] == 2 * r.index).all()
        assert res.scalars["ring6_frac"] == pytest.approx(1 / 6)
        assert res.scalars["ring_mean_size"] == pytest.approx((6 + 5 * 8) / 6)
        assert res.ring_status.startswith("ok")


def test_rings_of_phlogopite_sheet_and_albite_framework():
    # a mica tetrahedral sheet is a net of 6-rings: each Si on 3 of them
    r = network_properties(phlogopite().repeat(2), CUT).rings.set_index("size")
    assert list(r.index) == [6] and r.loc[6, "per_former"] == pytest.approx(0.5)
    # feldspar frameworks contain 4-rings (the double crankshaft chain)
    r = network_properties(albite().repeat(2), CUT).rings
    assert 4 in set(r["size"]) and (r["size"] % 2 == 0).all()


def test_ring_search_never_raises(monkeypatch):
    res = network_properties(forsterite().repeat(2), CUT)  # isolated tetrahedra
    assert res.rings.empty and res.ring_status == "no bridging oxygen: no rings"
    assert res.scalars["ring_count"] == 0 and res.scalars["ring_ok"] == 0.0
    res = network_properties(quartz().repeat(3), CUT, max_ring_vertices=100)
    assert res.rings.empty and "max_vertices=100" in res.ring_status

    import matscipy.ffi

    def boom(*args):
        raise RuntimeError("MAX_WALKER exceeded")

    monkeypatch.setattr(matscipy.ffi, "find_sp_rings", boom)
    res = network_properties(quartz().repeat(3), CUT)
    assert res.rings.empty
    assert res.ring_status == "matscipy ring search failed: RuntimeError: MAX_WALKER exceeded"
    assert res.scalars["q4_Si"] == 1.0  # the rest of the analysis is unaffected
    counts, status = ring_statistics(3, np.empty(0, int), np.empty(0, int), np.empty((0, 3)))
    assert counts == {} and status == "no former-O bonds"


def test_default_cutoffs_from_g_of_r_and_fallbacks():
    assert default_cutoffs(["Si", "O", "Na", "Al"]) == {("Si", "O"): 2.0, ("Al", "O"): 2.2}
    cut = default_cutoffs(quartz().repeat(3))
    # the minimum lies in the empty gap after the Si-O shell (1.61 Å), clamped to 2.0 +- 0.5
    assert set(cut) == {("Si", "O")} and 1.7 < cut[("Si", "O")] <= 2.5
    res = network_properties(quartz().repeat(2))  # cutoffs from the structure
    assert res.scalars["q4_Si"] == 1.0 and res.cutoffs == cut
    with pytest.raises(ValueError, match="got the string"):
        default_cutoffs("SiO2")
    assert set(FALLBACK_CUTOFFS) >= {("Si", "O"), ("Al", "O"), ("B", "O"), ("P", "O")}


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"no cutoff for \['Al-O'\]"):
        network_properties(albite(), {("O", "Si"): 2.0})
    open_cell = quartz()
    open_cell.pbc = [True, True, False]
    with pytest.raises(ValueError, match="fully periodic"):
        network_properties(open_cell, CUT)
    with pytest.raises(ValueError, match="B2O3"):
        nbo_per_t_charge_balance({"B2O3": 20, "Na2O": 20, "SiO2": 60})
    with pytest.raises(ValueError, match="TiO2"):
        nbo_per_t_charge_balance({"TiO2": 5, "Na2O": 20, "SiO2": 75})


def test_charge_balance_formula():
    # peralkaline: 2 (M2O + MO - Al2O3) / (SiO2 + 2 Al2O3)
    x = {"Na2O": 20, "CaO": 10, "Al2O3": 5, "SiO2": 65}
    assert nbo_per_t_charge_balance(x) == pytest.approx(2 * (0.2 + 0.1 - 0.05) / (0.65 + 0.1))
    assert nbo_per_t_charge_balance("Na2O-2SiO2") == pytest.approx(1.0)  # disilicate: Q3
    assert nbo_per_t_charge_balance("Na2O-SiO2") == pytest.approx(2.0)  # metasilicate: Q2
    assert nbo_per_t_charge_balance({"Na2O": 10, "Al2O3": 20, "SiO2": 70}) == 0.0  # peraluminous
    # the structures' label form, as written by the structures stage
    assert nbo_per_t_charge_balance("(Na2O)0.3-(Al2O3)0.1-(SiO2)0.6") == pytest.approx(0.5)


def test_stack_results_long_tables():
    res = {"qz": network_properties(quartz().repeat(3), CUT, max_ring_size=8),
           "fo": network_properties(forsterite(), CUT)}
    scal, qn, cn, rings = stack_results(res)
    assert list(scal["structure_id"]) == ["qz", "fo"]
    assert scal.set_index("structure_id").loc["fo", "q0_Si"] == 1.0
    assert set(qn.columns) == {"structure_id", "former", "n", "count", "fraction"}
    assert set(rings["structure_id"]) == {"qz"} and len(cn) == 2
    assert qn.groupby(["structure_id", "former"])["fraction"].sum().eq(1.0).all()
    assert isinstance(scal, pd.DataFrame) and "ring_status" in scal


def test_qn_on_a_large_cell():
    # 3,087 atoms, the size of a production glass cell
    res = network_properties(quartz().repeat(7), CUT, rings=False)
    assert res.scalars["n_atoms"] == 3087 and res.scalars["q4_Si"] == 1.0


# ----------------------------------------------------------------- X-ray S(Q)

# rows of the Cromer-Mann table (Element,a1,b1,...,c) as in R-Chr/vitrum
CM_ROWS = {
    "O": "O,3.05E+00,1.33E+01,2.29E+00,5.70E+00,1.55E+00,3.24E-01,8.67E-01,3.29E+01,2.51E-01",
    "Si": "Si,6.29E+00,2.44E+00,3.04E+00,3.23E+01,1.99E+00,6.79E-01,1.54E+00,8.17E+01,1.14E+00",
    "Na": "Na,4.76E+00,3.29E+00,3.17E+00,8.84E+00,1.27E+00,3.14E-01,1.11E+00,1.29E+02,6.76E-01",
}
HEADER = "Element,a1,b1,a2,b2,a3,b3,a4,b4,c"


@pytest.fixture
def cm_table(tmp_path):
    p = tmp_path / "cm.csv"
    p.write_text("\n".join([HEADER, *CM_ROWS.values()]) + "\n")
    return load_cromer_mann(p)


def test_form_factors_at_zero_q_count_electrons(cm_table):
    q = np.array([1e-8, 5.0, 20.0])
    f_si, f_o = form_factor("Si", q, cm_table), form_factor("O", q, cm_table)
    assert f_si[0] == pytest.approx(14.0, abs=0.01) and f_o[0] == pytest.approx(8.008, abs=1e-3)
    assert np.all(np.diff(f_si) < 0) and np.all(np.diff(f_o) < 0)


def test_xray_weights_sum_to_one_and_single_element_limit(cm_table):
    q = np.linspace(0.3, 25.0, 200)
    g = rdf(quartz().repeat(3), r_max=8.0, dr=0.02)
    s, w = xray_sq(g, q, cm_table)
    assert set(w) == {"O-O", "O-Si", "Si-Si"}
    np.testing.assert_allclose(sum(w.values()), 1.0, rtol=1e-12)
    sab = partial_structure_factors(g, q)
    np.testing.assert_allclose(s, sum(w[k] * sab[k] for k in w), rtol=1e-12)
    # heavier Si gains weight relative to O compared with the atomic fractions
    c = g.concentrations
    assert np.all(w["Si-Si"] > c["Si"] ** 2)
    # single element: S_X(Q) is the one partial, whatever f(Q)
    si_only = quartz().repeat(3)
    del si_only[[a.index for a in si_only if a.symbol == "O"]]
    g1 = rdf(si_only, r_max=8.0, dr=0.02)
    s1, w1 = xray_sq(g1, q, cm_table)
    np.testing.assert_allclose(w1["Si-Si"], 1.0)
    np.testing.assert_allclose(s1, partial_structure_factors(g1, q)["Si-Si"], rtol=1e-12)
    w3 = xray_weights({"Na": 0.2, "Si": 0.2, "O": 0.6}, q, cm_table)
    np.testing.assert_allclose(sum(w3.values()), 1.0, rtol=1e-12)


def test_cromer_mann_loader_errors(tmp_path, cm_table):
    bad = tmp_path / "bad.csv"
    bad.write_text("Element,a1,b1\nSi,1,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['a2'"):
        load_cromer_mann(bad)
    bad.write_text(HEADER + "\n" + CM_ROWS["Si"].replace("6.29E+00", "x") + "\n")
    with pytest.raises(ValueError, match=r"non-numeric coefficient\(s\) for \['Si'\]"):
        load_cromer_mann(bad)
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        load_cromer_mann(tmp_path / "nothere.csv")
    with pytest.raises(MissingFormFactor, match=r"no X-ray form factor for \['Ca'\] in .*cm.csv"):
        xray_weights({"Ca": 0.5, "O": 0.5}, np.array([1.0]), cm_table)


def test_shared_cromer_mann_table(shared_data):
    table = load_cromer_mann(shared_data / "structure_reference" / "scattering_factors"
                             / "xray_form_factor_coefficients_cromer_mann.csv")
    assert len(table.elements) == 98
    assert form_factor("Si", np.array([1e-8]), table)[0] == pytest.approx(14.0, abs=0.01)


def test_module_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, vitriflow.properties.network, vitriflow.properties.xray, "
            "vitriflow.properties.experiment; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_charge_balance_from_the_cell_whatever_its_label():
    """A glass configured as {Na2O: 25, SiO2: 75} is labelled 'Na2O25-SiO275', which names no
    oxide units; the charge balance is taken from the cell's own atoms instead."""
    from vitriflow.properties.network import cell_oxides, nbo_per_t_charge_balance

    ns3 = ["Na"] * 4 + ["Si"] * 6 + ["O"] * 15
    assert cell_oxides(ns3) == pytest.approx({"Na2O": 0.25, "SiO2": 0.75})
    assert nbo_per_t_charge_balance(cell_oxides(ns3)) == pytest.approx(2 / 3)
    nas = ["Na"] * 2 + ["Al"] * 2 + ["Si"] * 3 + ["O"] * 10  # Na2O.Al2O3.3SiO2: fully polymerised
    assert nbo_per_t_charge_balance(cell_oxides(nas)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="B is neither Si, Al"):
        cell_oxides(["B", "B", "O", "O", "O"])
