"""Tests of vitriflow.analysis on crystals and random cells with known answers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from ase import Atoms
from ase.neighborlist import neighbor_list
from ase.spacegroup import crystal

from vitriflow.analysis import (
    AnalysisSettings,
    MissingScatteringLength,
    analyze_system,
    bond_angles,
    coordination_numbers,
    default_triplets,
    density_g_cm3,
    first_minimum,
    formation_energy_per_atom,
    load_experimental_fq,
    load_scattering_lengths,
    neutron_fq,
    r_chi,
    rdf,
)
from vitriflow.analysis.coordination import angle_histogram, histogram_mode
from vitriflow.analysis.rdf import half_min_width, r_grid
from vitriflow.analysis.report import SystemTables, composition_summary, write_analysis_section
from vitriflow.analysis.scattering import FALLBACK_SCATTERING_LENGTHS_FM, lorch
from vitriflow.analysis.system import replica_average

REPO = Path(__file__).resolve().parents[1]
SIO = {("O", "Si"): 2.0}


def cristobalite() -> Atoms:
    """alpha-cristobalite, P4_12_12 (Pluth et al. 1985 coordinates)."""
    return crystal(["Si", "O"], basis=[(0.3003, 0.3003, 0.0), (0.2392, 0.1044, 0.1787)],
                   spacegroup=92, cellpar=[4.978, 4.978, 6.948, 90, 90, 90])


def quartz() -> Atoms:
    """alpha-quartz, P3_121 (Le Page & Donnay 1976; Si on 3a (x, 0, 1/3), O z = 1/3 - 0.1191):
    Si-O 1.605 and 1.614 Å."""
    return crystal(["Si", "O"], basis=[(0.4697, 0.0, 1 / 3), (0.4135, 0.2669, 1 / 3 - 0.1191)],
                   spacegroup=152, cellpar=[4.916, 4.916, 5.4054, 90, 90, 120])


def rattled(atoms: Atoms, reps, sigma: float, seed: int) -> Atoms:
    a = atoms * reps
    a.positions += np.random.default_rng(seed).normal(0.0, sigma, a.positions.shape)
    return a


def random_cell(n_si: int, n_o: int, density: float = 0.0664, seed: int = 0) -> Atoms:
    n = n_si + n_o
    length = (n / density) ** (1 / 3)
    pos = np.random.default_rng(seed).random((n, 3)) * length
    return Atoms(f"Si{n_si}O{n_o}", positions=pos, cell=[length] * 3, pbc=True)


# ---------------------------------------------------------------- RDF

def test_rdf_of_random_points_tends_to_one():
    g = rdf(random_cell(1000, 2000), r_max=8.0, dr=0.05)
    far = g.r > 2.0
    for name, arr in g.as_dict().items():
        assert abs(arr[far].mean() - 1.0) < 0.02, name
    assert set(g.partials) == {"O-O", "O-Si", "Si-Si"}


def test_rdf_integrates_to_coordination_numbers():
    """4 pi rho_b int r^2 g_ab = CN of b around a: checks a==b and a!=b normalisation."""
    at = cristobalite() * (3, 3, 2)
    g = rdf(at, r_max=6.0, dr=0.01)
    shell = 4 / 3 * np.pi * (g.edges[1:] ** 3 - g.edges[:-1] ** 3)
    rho = {el: n / g.volume for el, n in g.counts.items()}
    n_o = g.counts["O"]

    def running(pair, rho_b, rc):
        return float(np.sum((g.partials[pair] * shell)[g.r < rc]) * rho_b)

    assert running("O-Si", rho["O"], 2.0) == pytest.approx(4.0, abs=1e-9)  # O around Si
    assert running("O-Si", rho["Si"], 2.0) == pytest.approx(2.0, abs=1e-9)  # Si around O
    cn_oo = coordination_numbers(at, {("O", "O"): 3.0})[("O", "O")].mean()
    assert running("O-O", (n_o - 1) / g.volume, 3.0) == pytest.approx(cn_oo, abs=1e-9)
    assert cn_oo == pytest.approx(6.0)


def test_crystal_peak_positions_and_cutoffs():
    g = rdf(cristobalite() * (3, 3, 2), r_max=6.0, dr=0.01)
    peaks = {p: first_minimum(g.r, arr, 0.01, 0.03) for p, arr in g.partials.items()}
    assert 1.59 <= peaks["O-Si"][0] <= 1.63
    assert 2.55 <= peaks["O-O"][0] <= 2.70
    assert 3.02 <= peaks["Si-Si"][0] <= 3.12
    assert 1.7 < peaks["O-Si"][1] < 3.4  # first minimum lies in the gap before the 2nd shell


def test_rdf_grid_and_width_checks():
    edges, centres = r_grid(5.0, 0.05)
    assert len(centres) == 100 and centres[0] == pytest.approx(0.025)
    with pytest.raises(ValueError, match="whole number"):
        r_grid(5.0, 0.03)
    assert half_min_width(np.diag([10.0, 12.0, 14.0])) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="periodic"):
        rdf(Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=[5, 5, 5], pbc=False), 2.0, 0.1)


def test_rdf_beyond_half_cell_uses_images():
    """A small cell analysed past L/2 equals the same crystal as a big supercell."""
    small, big = cristobalite(), cristobalite() * (3, 3, 2)
    assert half_min_width(small.cell[:]) < 6.0
    g1, g2 = rdf(small, 6.0, 0.02), rdf(big, 6.0, 0.02)
    for p in g1.partials:
        if p == "O-Si":  # a != b: identical normalisation
            np.testing.assert_allclose(g1.partials[p], g2.partials[p], atol=1e-9)
        else:  # a == b: N_a - 1 normalisation differs only by the finite-N factor
            na1, na2 = g1.counts[p[:p.index("-")]], g2.counts[p[:p.index("-")]]
            np.testing.assert_allclose(g1.partials[p] * (na1 - 1) / na1,
                                       g2.partials[p] * (na2 - 1) / na2, atol=1e-9)


# ---------------------------------------------------------------- coordination, angles

def test_coordination_and_density_of_quartz():
    q = quartz()
    assert len(q) == 9
    assert density_g_cm3(q) == pytest.approx(2.646, abs=0.01)
    g = rdf(q * (3, 3, 3), 6.0, 0.01)
    _, rc = first_minimum(g.r, g.partials["O-Si"], 0.01, 0.05)
    cns = coordination_numbers(q, {("O", "Si"): rc})
    assert np.all(cns[("Si", "O")] == 4) and np.all(cns[("O", "Si")] == 2)


@pytest.mark.parametrize("make,o_si_o,si_o_si",
                         [(cristobalite, 109.5, 146.5), (quartz, 109.5, 143.7)])
def test_angle_modes_of_crystals(make, o_si_o, si_o_si):
    ang = bond_angles(make(), [("O", "Si", "O"), ("Si", "O", "Si")], SIO)
    assert len(ang[("O", "Si", "O")]) == 6 * (len(make()) // 3)  # 6 angles per SiO4
    x, p = angle_histogram(ang[("O", "Si", "O")], 1.0)
    assert histogram_mode(x, p, 2.0) == pytest.approx(o_si_o, abs=1.5)
    assert np.median(ang[("Si", "O", "Si")]) == pytest.approx(si_o_si, abs=0.3)


def test_bond_angles_match_brute_force_on_mixed_coordination():
    at = random_cell(40, 80, density=0.07, seed=3)
    cut = {("O", "Si"): 2.2, ("Si", "Si"): 2.6}
    triplets = [("O", "Si", "O"), ("Si", "O", "Si"), ("O", "Si", "Si")]
    got = bond_angles(at, triplets, cut)
    i, j, d, vec = neighbor_list("ijdD", at, 3.0)
    sym = np.array(at.get_chemical_symbols())
    rcs = {("O", "Si"): 2.2, ("Si", "O"): 2.2, ("Si", "Si"): 2.6}
    for x, a, y in triplets:
        ref = []
        for c in np.flatnonzero(sym == a):
            nb = [(sym[j[k]], vec[k]) for k in np.flatnonzero(i == c)
                  if (sym[j[k]], a) in rcs and d[k] < rcs[(sym[j[k]], a)]]
            for (s1, v1), (s2, v2) in itertools.combinations(nb, 2):
                if {s1, s2} == {x, y} or (s1 == s2 == x == y):
                    cosv = v1 @ v2 / np.linalg.norm(v1) / np.linalg.norm(v2)
                    ref.append(np.degrees(np.arccos(np.clip(cosv, -1, 1))))
        np.testing.assert_allclose(np.sort(got[(x, a, y)]), np.sort(ref), atol=1e-8)
        assert len(ref) > 5


def test_default_triplets_follow_cation_anion_bonds():
    cut = {("Na", "O"): 2.9, ("O", "Si"): 2.3, ("Na", "Si"): 3.5, ("O", "O"): 3.2,
           ("Na", "Na"): float("nan")}
    got = default_triplets(cut)
    assert got == sorted([("O", "Si", "O"), ("Si", "O", "Si"), ("O", "Na", "O"), ("Na", "O", "Na")])
    assert default_triplets({("Au", "Cu"): 3.2}) == [("Au", "Cu", "Au"), ("Cu", "Au", "Cu")]


# ---------------------------------------------------------------- structure factor

def _b_table():
    return dict(FALLBACK_SCATTERING_LENGTHS_FM)


def test_fq_matches_direct_pair_sum():
    """Binned Faber-Ziman transform == direct sum over pairs of b_i b_j sinc(Qr) M(r)."""
    at = rattled(cristobalite(), (2, 2, 2), 0.1, seed=5)
    r_max, dr = 6.0, 0.002
    g = rdf(at, r_max, dr)
    q = np.linspace(0.5, 20.0, 40)
    f, s = neutron_fq(g, q, _b_table(), use_lorch=True)
    b = _b_table()
    sym = np.array(at.get_chemical_symbols())
    n, vol = len(at), at.get_volume()
    counts = {el: int((sym == el).sum()) for el in ("O", "Si")}
    i, j, d = neighbor_list("ijd", at, r_max)
    # ordered pairs; like pairs carry the N_a/(N_a-1) factor of the Faber-Ziman g_aa
    w = np.array([b[a] * b[c] / n * (counts[a] / (counts[a] - 1) if a == c else 1.0)
                  for a, c in zip(sym[i], sym[j], strict=True)])
    direct = (w[None, :] * np.sinc(np.outer(q, d) / np.pi) * lorch(d, r_max)[None, :]).sum(1)
    bmean2 = sum(counts[el] / n * b[el] for el in counts) ** 2
    rr = np.linspace(0, r_max, 200001)
    bg = np.trapezoid(4 * np.pi * n / vol * rr**2 * np.sinc(np.outer(q, rr) / np.pi)
                      * lorch(rr, r_max), rr, axis=1) * bmean2
    np.testing.assert_allclose(f * 100, direct - bg, atol=2e-3 * bmean2)
    np.testing.assert_allclose(s, (direct - bg) / bmean2 + 1, atol=2e-3)


def test_sq_high_q_limit_and_normalisation():
    at = rattled(cristobalite(), (3, 3, 2), 0.08, seed=1)
    g = rdf(at, 8.0, 0.01)
    q = np.arange(0.3, 30.0, 0.05)
    f, s = neutron_fq(g, q, _b_table())
    b = _b_table()
    bmean = (b["Si"] + 2 * b["O"]) / 3
    np.testing.assert_allclose(f, (s - 1) * bmean**2 / 100, rtol=1e-12, atol=1e-15)
    assert abs(s[q > 20].mean() - 1.0) < 0.01
    assert np.abs(s[q > 20] - 1).max() < 0.1
    assert s[q < 12].max() > 1.3  # real structure below


def test_missing_scattering_length_is_a_clear_error(tmp_path):
    at = Atoms("UO2", positions=[[0, 0, 0], [1.8, 0, 0], [0, 1.8, 0]], cell=[5, 5, 5], pbc=True)
    g = rdf(at, 2.4, 0.1)
    table, source = load_scattering_lengths(tmp_path / "absent.csv")
    assert "fallback" in source
    with pytest.raises(MissingScatteringLength, match=r"\['U'\].*fallback"):
        neutron_fq(g, np.array([1.0]), table, source=source)
    bad = tmp_path / "b.csv"
    bad.write_text("element,b\nO,5.8\n")
    with pytest.raises(ValueError, match="b_coh_fm"):
        load_scattering_lengths(bad)


def test_shared_scattering_table_and_nimrod_convention(shared_data):
    ref = shared_data / "structure_reference"
    b, src = load_scattering_lengths(
        ref / "scattering_factors/neutron_coherent_scattering_lengths_fm.csv")
    assert src.endswith(".csv") and b["O"] == pytest.approx(5.80) and b["Si"] == pytest.approx(4.15)
    exp = load_experimental_fq(ref / "silica_neutron_NIMROD/SiO2_NIMROD_FQ.csv")
    assert exp["Q_invA"].min() > 0 and len(exp) == 999
    bmean2 = ((b["Si"] + 2 * b["O"]) / 3) ** 2 / 100  # barn
    # Keen F(Q) in barn/sr/atom: -> -<b>^2 (1 - S(0)) at low Q, -> 0 at high Q
    s_low = 1 + exp.loc[exp.Q_invA < 0.5, "F_Q"].mean() / bmean2
    assert 0.0 < s_low < 0.2
    assert abs(exp.loc[exp.Q_invA > 20, "F_Q"].mean()) < 2e-3
    s_exp = 1 + exp["F_Q"] / bmean2
    fsdp = exp.loc[(exp.Q_invA > 1) & (exp.Q_invA < 2)]
    assert 1.4 < fsdp.loc[fsdp.F_Q.idxmax(), "Q_invA"] < 1.6 and 1.3 < s_exp.max() < 1.8
    # a (rattled) cristobalite cell agrees with the glass far better than a featureless F = 0
    at = rattled(cristobalite(), (4, 4, 3), 0.08, seed=2)
    g = rdf(at, 9.9, 0.02)
    q = np.arange(0.3, 25.0, 0.05)
    f, _ = neutron_fq(g, q, b)
    rc = r_chi(q, f, exp.Q_invA, exp.F_Q, (1.0, 20.0))
    assert rc < 0.7
    assert r_chi(q, 100 * f, exp.Q_invA, exp.F_Q, (1.0, 20.0)) > 10  # wrong units would show


# ---------------------------------------------------------------- energies, system tables

def test_formation_energy_reasons():
    refs = {"potential": "bks", "energies_per_atom": {"Si": -5.0, "O": -4.0}, "reason": ""}
    x = {"Si": 1 / 3, "O": 2 / 3}
    ef, why = formation_energy_per_atom(-7.0, x, refs, "bks")
    assert ef == pytest.approx(-7.0 + 5.0 / 3 + 8.0 / 3) and why == ""
    assert "chik" in formation_energy_per_atom(-7.0, x, refs, "chik")[1]
    assert np.isnan(formation_energy_per_atom(-7.0, {"Na": 1.0}, refs, "bks")[0])
    nulled = {"potential": "bks", "energies_per_atom": None, "reason": "no elemental phases"}
    assert "no elemental phases" in formation_energy_per_atom(-7.0, x, nulled, "bks")[1]


def _frames():
    frames = []
    for rep in range(2):
        a = rattled(cristobalite(), (3, 3, 2), 0.05, seed=10 + rep)
        a.info.update(structure_id=f"silica-c0000-r{rep:02d}", composition_index=0, replica=rep,
                      label="SiO2", potential="bks", status="ok", energy_per_atom_eV=-6.5)
        frames.append(a)
    bad = cristobalite() * (2, 2, 2)
    bad.info.update(structure_id="silica-c0000-r02", composition_index=0, replica=2,
                    label="SiO2", potential="bks", status="failed", reason="pair closer than 0.6 A")
    return [*frames, bad]


def test_analyze_system_tables_deterministic_and_report(tmp_path):
    settings = AnalysisSettings.from_config(dict(r_max=6.0, dr=0.02, q_max=15.0,
                                                 scattering_lengths=None, experimental_fq=None))
    refs = {"potential": "bks", "energies_per_atom": {"Si": -5.0, "O": -4.0}, "reason": ""}
    res = analyze_system(_frames(), settings, "silica", refs=refs)
    res2 = analyze_system(_frames(), settings, "silica", refs=refs)
    pd.testing.assert_frame_equal(res.properties, res2.properties)
    pd.testing.assert_frame_equal(res.rdf, res2.rdf)
    p = res.properties.set_index("structure_id")
    assert list(p["status"]) == ["ok", "ok", "failed"]
    assert p.loc["silica-c0000-r02", "reason"].startswith("pair closer")
    assert np.isnan(p.loc["silica-c0000-r02"].get("cn_Si_O", np.nan))
    ok = p[p.status == "ok"]
    assert np.allclose(ok["cn_Si_O"], 4.0) and np.allclose(ok["cn_O_Si"], 2.0)
    assert ok["rpeak_O_Si"].between(1.57, 1.65).all()
    assert ok["angle_mode_O_Si_O_deg"].between(106, 113).all()
    assert ok["formation_energy_per_atom_eV"].notna().all()
    assert set(res.rdf["pair"]) == {"O-O", "O-Si", "Si-Si", "total"}
    assert len(res.rdf) == 2 * 4 * 300
    assert set(res.distributions["key"]) >= {"cn_Si_O", "O-Si-O", "Si-O-Si"}
    assert res.sq["Q_invA"].nunique() == len(settings.q)
    avg = replica_average(res.rdf)
    assert (avg["n_structures"] == 2).all() and len(avg) == 4 * 300
    sel = res.rdf[(res.rdf.pair == "O-Si") & (res.rdf.r_A == res.rdf.r_A.iloc[80])]
    assert avg.loc[(avg.pair == "O-Si") & (avg.r_A == sel.r_A.iloc[0]), "g_mean"].item() == \
        pytest.approx(sel.g.mean())
    assert "fallback" in res.notes["scattering_lengths_source"]
    summary = composition_summary(res.properties, res.distributions)
    assert summary.loc[0, ["ok", "failed"]].tolist() == [2, 1]
    assert 106 <= summary.loc[0, "mode O-Si-O °"] <= 113 and summary.loc[0, "CN O around Si"] == 4
    # report fragment
    out = tmp_path / "40_analysis.html"
    tables = SystemTables("silica", res.rdf, res.properties, res.distributions, res.sq)
    write_analysis_section(out, [tables], None, (1.0, 20.0))
    html = out.read_text()
    assert html.count("<img") >= 4 and "silica-c0000-r02" in html and "pair closer" in html
    write_analysis_section(out, [tables], None, (1.0, 20.0), max_detailed=0)
    brief = out.read_text()
    assert "<img" not in brief and "1 further systems" in brief and "pair closer" in brief


def test_all_failed_system_still_gives_tables_and_section(tmp_path):
    res = analyze_system(_frames()[2:],
                         AnalysisSettings.from_config(dict(r_max=5.0, scattering_lengths=None)),
                         "silica")
    assert list(res.properties["status"]) == ["failed"]
    assert res.rdf.empty and list(res.rdf.columns)[-2:] == ["r_A", "g"]
    out = tmp_path / "s.html"
    write_analysis_section(out, [SystemTables("silica", res.rdf, res.properties,
                                              res.distributions, res.sq)], None, (1.0, 20.0))
    assert "no successful structures" in out.read_text()
    with pytest.raises(ValueError, match="no structures"):
        analyze_system([], AnalysisSettings.from_config(), "empty")


def test_settings_validation_and_schema_defaults():
    with pytest.raises(ValueError,
                       match="Additional properties are not allowed .'rmax' was unexpected"):
        AnalysisSettings.from_config({"rmax": 5})
    with pytest.raises(ValueError, match="q_min"):
        AnalysisSettings.from_config({"q_min": 5.0, "q_max": 1.0})
    schema = yaml.safe_load((REPO / "src/vitriflow/schemas/analysis.schema.yaml").read_text())
    props = schema["properties"]
    assert set(props) == set(AnalysisSettings.__dataclass_fields__)
    defaults = AnalysisSettings.from_config({k: v["default"] for k, v in props.items()})
    plain = AnalysisSettings.from_config()
    for k in props:
        assert getattr(defaults, k) == getattr(plain, k), k
        assert props[k].get("description"), k


def test_a_frame_that_cannot_be_analysed_fails_alone():
    settings = AnalysisSettings.from_config(dict(r_max=6.0, dr=0.02, q_max=15.0,
                                                 scattering_lengths=None, experimental_fq=None))
    frames = _frames()
    broken = frames[0].copy()
    broken.info = dict(frames[0].info, structure_id="silica-c0000-r03", replica=3)
    broken.positions[0] = np.nan  # an "ok" frame with a NaN coordinate
    res = analyze_system([*frames, broken], settings, "silica")
    p = res.properties.set_index("structure_id")
    assert p.loc["silica-c0000-r03", "status"] == "failed"
    assert p.loc["silica-c0000-r03", "reason"].startswith("analysis: non-finite positions")
    assert list(p.loc[["silica-c0000-r00", "silica-c0000-r01"], "status"]) == ["ok", "ok"]
    assert np.allclose(p.loc[["silica-c0000-r00", "silica-c0000-r01"], "cn_Si_O"], 4.0)


def test_report_draws_smoothed_curves_and_keeps_the_raw_table(tmp_path):
    """The figures draw each structure's g(r) smoothed, then averaged; the tables are untouched
    and the section says how the curves were drawn."""
    from vitriflow.analysis.report import rdf_figure, smoothed_rdf

    settings = AnalysisSettings.from_config(dict(r_max=6.0, dr=0.02, q_max=15.0,
                                                 scattering_lengths=None, experimental_fq=None))
    res = analyze_system(_frames(), settings, "silica")
    raw = res.rdf.copy()
    smooth = smoothed_rdf(res.rdf, 0.05)
    pd.testing.assert_frame_equal(res.rdf, raw)  # the input table is not modified
    one = (smooth.pair == "O-Si") & (smooth.structure_id == "silica-c0000-r00")
    g_raw = raw[(raw.pair == "O-Si")
                & (raw.structure_id == "silica-c0000-r00")].sort_values("r_A")["g"]
    g_smooth = smooth[one].sort_values("r_A")["g"]
    # Gaussian smoothing keeps the area (coordination) and damps the bin-to-bin noise
    assert g_smooth.sum() == pytest.approx(g_raw.sum(), rel=1e-3)
    assert np.square(np.diff(g_smooth, 2)).sum() < 0.1 * np.square(np.diff(g_raw, 2)).sum()
    tables = SystemTables("silica", res.rdf, res.properties, res.distributions, res.sq)
    drawn = rdf_figure(tables, 0.05).axes[1].lines[0].get_ydata()  # O-Si panel, replica mean
    avg = replica_average(smooth)
    assert np.allclose(drawn, avg[avg.pair == "O-Si"].sort_values("r_A")["g_mean"])
    assert not np.allclose(drawn, replica_average(raw).query("pair == 'O-Si'")["g_mean"])
    out = tmp_path / "40_analysis.html"
    write_analysis_section(out, [tables], None, (1.0, 20.0), rdf_smoothing_A=0.05,
                           angle_smoothing_deg=3)
    assert "σ = 0.05 Å" in out.read_text() and "raw histograms" in out.read_text()
    write_analysis_section(out, [tables], None, (1.0, 20.0))
    assert "Gaussian-smoothed" not in out.read_text()


def test_structure_averaged_over_its_md_samples():
    """With frames along the last MD stage, g(r), CN and angles come from all of them (the
    structure at that temperature); density and energy still from the relaxed frame."""
    from vitriflow.analysis.rdf import rdf

    settings = AnalysisSettings.from_config(dict(r_max=6.0, dr=0.02, q_max=15.0,
                                                 scattering_lengths=None, experimental_fq=None,
                                                 cutoffs={"O-Si": 2.0}))
    frames = _frames()
    sid = frames[0].info["structure_id"]
    samples = {sid: [rattled(cristobalite(), (3, 3, 2), 0.12, seed=s) for s in (1, 2, 3)]}
    plain = analyze_system(frames, settings, "silica")
    res = analyze_system(frames, settings, "silica", samples=samples)
    p = res.properties.set_index("structure_id")
    assert p.loc[sid, "analysed_from"] == "samples" and p.loc[sid, "analysed_frames"] == 3
    other = frames[1].info["structure_id"]
    assert p.loc[other, "analysed_from"] == "final" and p.loc[other, "analysed_frames"] == 1
    g = res.rdf[(res.rdf.structure_id == sid) & (res.rdf.pair == "O-Si")]["g"].to_numpy()
    expected = np.mean([rdf(a, 6.0, 0.02, ["O", "Si"]).partials["O-Si"] for a in samples[sid]],
                       axis=0)
    np.testing.assert_allclose(g, expected)
    q = plain.properties.set_index("structure_id")
    assert p.loc[sid, "density_g_cm3"] == q.loc[sid, "density_g_cm3"]  # from the relaxed frame
    assert p.loc[sid, "energy_per_atom_eV"] == q.loc[sid, "energy_per_atom_eV"]
    # hotter (more rattled) frames broaden the Si-O peak: a wider O-Si-O angle spread
    assert p.loc[sid, "angle_mean_O_Si_O_deg"] != q.loc[sid, "angle_mean_O_Si_O_deg"]
    # CN pooled over the frames: the mean of the three frames' own means (same atom count each)
    per_frame = [analyze_system([_with_info_of(a, frames[0])], settings,
                                "silica").properties["cn_Si_O"].item()
                 for a in samples[sid]]
    assert p.loc[sid, "cn_Si_O"] == pytest.approx(np.mean(per_frame))
    from vitriflow.analysis.report import _frames_note

    assert "averaged over 3 frames per structure" in _frames_note(res.properties)
    assert "relaxed final frame of each structure" in _frames_note(plain.properties)


def _with_info_of(atoms, like):
    """``atoms`` carrying the info of ``like`` (one sample analysed as a structure of its own)."""
    a = atoms.copy()
    a.info = dict(like.info)
    return a


def test_rdf_figure_skips_pairs_a_glass_does_not_have():
    """A silicate in an aluminosilicate family has no Al-O curve to draw (its g is all zero)."""
    from vitriflow.analysis.report import rdf_figure

    r = np.arange(0.01, 2.0, 0.02)
    rows = []
    for ci, label, al in ((0, "NAS", 1.0), (1, "NS", 0.0)):
        for pair in ("Al-O", "O-Si", "total"):
            g = np.exp(-((r - 1.7) / 0.05) ** 2) * (al if pair == "Al-O" else 1.0)
            rows.append(pd.DataFrame({"structure_id": f"s{ci}", "composition_index": ci,
                                      "replica": 0, "label": label, "pair": pair, "r_A": r,
                                      "g": g}))
    t = SystemTables("fam", pd.concat(rows), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    fig = rdf_figure(t)
    drawn = {ax.get_title(): [ln.get_label() for ln in ax.lines
                              if not ln.get_label().startswith("_")]
             for ax in fig.axes if ax.get_visible()}
    assert drawn == {"Al-O": ["NAS"], "O-Si": ["NAS", "NS"], "total": ["NAS", "NS"]}
    assert [tx.get_text() for tx in fig.axes[2].get_legend().get_texts()] == ["NAS", "NS"]
