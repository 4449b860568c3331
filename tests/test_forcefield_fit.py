"""Force-field fit (vitriflow.forcefield_fit): schema and start-up checks, the search space, R_chi,
failure handling, resume, the report section, and the recovery of BKS from a BKS reference."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vitriflow.config import ConfigError, load_schema
from vitriflow.forcefield_fit.evaluate import Evaluator, StatePoint, derived_seed
from vitriflow.forcefield_fit.optimize import read_history, run_fit, sobol_design
from vitriflow.forcefield_fit.reference import Reference, load_reference, write_partials_csv
from vitriflow.forcefield_fit.space import build_space, check_config, load_section
from vitriflow.potentials.classical_params import PARAMETER_SETS

torch.set_num_threads(1)

BKS = PARAMETER_SETS["bks"]
BKS_Q, BKS_A = 2.4, 18003.7572

# 48-atom SiO2 cells (9.0 Å at 2.2 g/cm3) with short cutoffs: the plumbing tests, seconds each
TINY = {
    "cutoff": 4.4, "coulomb_cutoff": 4.4, "alpha": 0.35,
    "free": {"q_Si": [1.8, 3.0], "A_O-Si": [12000.0, 24000.0]},
    "state_point": {"atoms_per_cell": 48, "premelt_steps": 200, "prerelax_steps": 5,
                    "equilibration_steps": 40, "sampling_steps": 80, "sample_every": 20,
                    "guard_every": 40, "replicas": 1},
    "md": {"dtype": "float64", "compile": False},
    "reference": {"kind": "partials_csv", "r_max": 4.4, "dr": 0.1},
    "compare_with": ["bks"], "failure_cost": 3.0,
    "budget": {"initial_points": 4, "rounds": 2, "q": 2, "seed": 3, "mc_samples": 32,
               "num_restarts": 2, "raw_samples": 32},
    "refinement": {"rounds": 1, "starts": 2, "points": 1},
}


def _section(**changes) -> dict:
    cfg = copy.deepcopy(TINY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict) and key != "free":
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def _bks_run(cfg: dict, seed: int, replicas: int, sampling_steps: int):
    """BKS at the state point of ``cfg``, run independently of the fit (own seed, so its own
    starting liquids and velocities); the ``CandidateResult`` (averaged and per-replica g(r))."""
    sec = load_section({**cfg, "reference": {**cfg["reference"], "path": None}})
    sec["budget"]["seed"] = seed
    sec["state_point"].update(replicas=replicas, sampling_steps=sampling_steps)
    space = build_space(sec)
    bks = space.parameter_set(space.base_values(), "bks")
    ev = Evaluator(StatePoint.from_section(sec, space.counts), _NoCost(), bks, space.settings)
    result = ev.evaluate([bks], 1.0)[0]
    assert result.status == "ok", result.reason
    return result


def _bks_reference(cfg: dict, path, seed: int, replicas: int, sampling_steps: int):
    """An independent BKS run written as a partials CSV reference; returns its RDF."""
    result = _bks_run(cfg, seed, replicas, sampling_steps)
    write_partials_csv(result.rdf, path, {"stage": "test", "seed": seed})
    return result.rdf


class _NoCost:
    def cost(self, g):
        return 0.0, {}


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "bks_partials.csv"
    _bks_reference(TINY, path, seed=99, replicas=2, sampling_steps=160)
    return path


# ----------------------------------------------------------------------------- schema, checks
def test_schema_documents_every_key_and_fills_defaults():
    schema = load_schema("forcefield_fit")

    def walk(props, where):
        for key, sub in props.items():
            assert "description" in sub and "default" in sub, f"{where}{key}"
            assert "type" in sub or "enum" in sub or "oneOf" in sub, f"{where}{key}"
            if "properties" in sub:
                walk(sub["properties"], f"{where}{key}.")

    walk(schema["properties"], "forcefield_fit.")
    sec = load_section({})
    assert sec["budget"]["q"] == 16 and sec["state_point"]["temperature_K"] == 3600.0
    assert sec["coulomb"] == "dsf" and sec["alpha"] == 0.25 and sec["cutoff"] == 8.0
    # the default free space is the thesis's seven silica parameters, each +-50 % around BKS
    space = build_space(sec)
    assert len(space.names) == 7
    for name, value in space.base_values().items():
        k = space.names.index(name)
        assert space.lower[k] <= 0.5 * value * 1.001 and space.upper[k] >= 1.5 * value * 0.999


@pytest.mark.parametrize("change, message", [
    ({"free": {"q_Si": [1.0, 3.0], "A_Na-O": [1.0, 2.0]}},
     r"^forcefield_fit\.free\.A_Na-O: unknown parameter, \['Na'\] not in SiO2"),
    ({"free": {"D_O-Si": [1.0, 2.0]}}, r"^forcefield_fit\.free: 'D_O-Si' does not match"),
    ({"free": {"q_Si": [3.0, 1.0]}}, r"^forcefield_fit\.free\.q_Si: bounds \[3\.0, 1\.0\] are "
                                     r"empty or inverted"),
    ({"free": {"q_Si": [2.0, 2.0]}}, r"^forcefield_fit\.free\.q_Si: bounds .* empty or inverted"),
    ({"free": {"q_O": [-2.0, -1.0]}}, r"^forcefield_fit\.free\.q_O: the charge of the anion"),
    ({"free": {"rho_Si-O": [-0.1, 0.3]}}, r"^forcefield_fit\.free\.rho_Si-O: .*rho must stay > 0"),
    ({"log_scale": ["C_O-O"]}, r"^forcefield_fit\.log_scale: 'C_O-O' is not a free parameter"),
    ({"budget": {"q": 0}}, r"^forcefield_fit\.budget\.q: 0 is less than the minimum of 1"),
    ({"reference": {"r_max": 6.0}}, r"^forcefield_fit\.reference\.r_max: 6\.0 Å exceeds half "
                                    r"the cell width \(4\.49 Å\) of 48 atoms"),
    ({"compare_with": ["pedone"]}, r"^forcefield_fit\.compare_with: 'pedone' is not a Buckingham"),
    ({"base": "no_such_set"}, r"^forcefield_fit\.base: 'no_such_set' is neither"),
    ({"state_point": {"composition": "Xx2O"}}, r"Xx2O"),
    ({"state_point": {"melt_temperature_K": 4000.0}},
     r"^forcefield_fit\.state_point\.quench_steps: 0 with melt_temperature_K 4000\.0"),
    ({"state_point": {"quench_steps": 100}},
     r"^forcefield_fit\.state_point\.quench_steps: 100 with melt_temperature_K None"),
    ({"state_point": {"melt_temperature_K": 2000.0, "quench_steps": 100}},
     r"^forcefield_fit\.state_point\.melt_temperature_K: 2000\.0 is not above temperature_K"),
])
def test_check_config_refuses_in_one_line_naming_the_key(tiny_reference, change, message):
    cfg = _section(**change)
    cfg["reference"] = {**cfg["reference"], "path": str(tiny_reference)}
    with pytest.raises(ConfigError, match=message) as err:
        check_config(cfg)
    assert "\n" not in str(err.value)


def test_reference_file_missing_a_pair_is_refused(tmp_path, tiny_reference):
    df = pd.read_csv(tiny_reference, skiprows=1).drop(columns=["Si-Si"])
    bad = tmp_path / "no_sisi.csv"
    df.to_csv(bad, index=False)
    cfg = _section(reference={"path": str(bad)})
    with pytest.raises(ConfigError, match=r"^forcefield_fit\.reference\.path: .*no column for "
                                          r"pair\(s\) \['Si-Si'\] that the cost needs"):
        check_config(cfg)
    # ... unless the cost leaves that pair out
    cfg = _section(reference={"path": str(bad), "pairs": ["Si-O", "O-O"]})
    assert check_config(cfg).names == ("q_Si", "A_O-Si")
    missing = _section(reference={"path": str(tmp_path / "absent.csv")})
    with pytest.raises(ConfigError, match=r"reference\.path: reference file .*absent\.csv"):
        check_config(missing)


def test_space_maps_units_and_keeps_neutrality():
    sec = load_section(_section(free={"q_Si": [1.2, 3.6], "A_Si-O": [1000.0, 100000.0],
                                      "rho_O-O": [0.2, 0.5]},
                                log_scale=["A_O-Si"], walls={"O-Si": 29.0}))
    space = build_space(sec)
    assert space.names == ("q_Si", "A_O-Si", "rho_O-O") and space.log == (False, True, False)
    u = np.array([0.5, 0.5, 0.25])
    values = space.from_unit(u)
    assert values["q_Si"] == pytest.approx(2.4) and values["A_O-Si"] == pytest.approx(10000.0)
    np.testing.assert_allclose(space.to_unit(values), u, atol=1e-12)
    p = space.parameter_set(values)
    assert p.charges["O"] == pytest.approx(-1.2) and sum(p.charges.values()) != 0  # per unit
    assert p.charges["Si"] + 2 * p.charges["O"] == pytest.approx(0.0, abs=1e-12)
    a, b, c, d = p.pairs["O-Si"]
    assert (a, c, d) == (pytest.approx(10000.0), BKS.pairs["O-Si"][2], 29.0)  # wall replaced
    assert b == pytest.approx(BKS.pairs["O-Si"][1])  # rho of O-Si not free: BKS's
    assert p.pairs["O-O"][1] == pytest.approx(1 / values["rho_O-O"])
    assert p.pairs["O-O"][3] == BKS.walls["O-O"]  # wall kept
    assert "Si-Si" not in p.pairs  # Coulomb only, as BKS
    assert space.base_values() == {"q_Si": 2.4, "A_O-Si": BKS.pairs["O-Si"][0],
                                   "rho_O-O": pytest.approx(1 / 2.76)}


def test_r_chi_is_the_thesis_formula(tmp_path):
    from vitriflow.analysis.rdf import RDF

    r = np.arange(0.05, 6.0, 0.1)
    ref = {"O-O": np.exp(-((r - 2.6) ** 2) / 0.02) * 3 + 1, "O-Si": np.exp(-((r - 1.6) ** 2) / 0.01)
           * 8 + 1}
    sim = {"O-O": ref["O-O"] * 1.1, "O-Si": ref["O-Si"] - 0.5}
    g = RDF(r=r, edges=np.append(r - 0.05, r[-1] + 0.05), partials=sim, total=r * 0,
            counts={"O": 2, "Si": 1}, volume=100.0)
    path = tmp_path / "ref.csv"
    pd.DataFrame({"r": r, "O-O": ref["O-O"], "Si-O": ref["O-Si"]}).to_csv(path, index=False)
    sec = load_section(_section(reference={"path": str(path), "pairs": ["O-O", "O-Si"],
                                           "r_max": 4.4}))
    reference = load_reference(sec, {"Si": 16, "O": 32})
    cost, terms = reference.cost(g)
    sel = r <= 4.4
    chi2 = [np.sum((ref[p][sel] - sim[p][sel]) ** 2) / np.sum(ref[p][sel] ** 2) for p in ref]
    assert cost == pytest.approx(math.sqrt(np.mean(chi2)), rel=1e-12)
    assert terms["O-O"] == pytest.approx(0.1, rel=1e-12)  # 10 % off everywhere
    assert set(terms) == {"O-O", "O-Si"}


def test_rdf_table_and_neutron_references(tmp_path, shared_data):
    """An analysis rdf table (long form, several structures) is averaged per pair; an
    experimental F(Q) is compared through the neutron-weighted F(Q) of the candidate."""
    from ase.spacegroup import crystal

    from vitriflow.analysis.rdf import rdf
    from vitriflow.io import write_table

    r = np.arange(0.05, 5.0, 0.1)
    rows = [pd.DataFrame({"structure_id": f"s{k}", "composition_index": ci, "pair": pair,
                          "r_A": r, "g": np.full_like(r, 1.0 + k + 10 * ci)})
            for ci in (0, 1) for k in (0, 1) for pair in ("O-O", "O-Si", "Si-Si")]
    table = tmp_path / "rdf.parquet"
    write_table(pd.concat(rows, ignore_index=True), table, {"stage": "test"})
    sec = load_section(_section(reference={"kind": "rdf_table", "path": str(table),
                                           "composition_index": 1}))
    ref = load_reference(sec, {"Si": 16, "O": 32})
    assert ref.kind == "partials" and np.allclose(ref.partials["O-Si"], 11.5)
    fq = shared_data / "structure_reference" / "silica_neutron_NIMROD" / "SiO2_NIMROD_FQ.csv"
    sec = load_section(_section(reference={"kind": "neutron_fq", "path": str(fq),
                                           "q_min": 1.0, "q_max": 15.0}))
    ref = load_reference(sec, {"Si": 16, "O": 32})
    cristobalite = crystal(["Si", "O"], basis=[(0.0, 0.0, 0.0), (0.125, 0.125, 0.125)],
                           spacegroup=227, setting=1, cellpar=[7.16, 7.16, 7.16, 90, 90, 90])
    value, terms = ref.cost(rdf(cristobalite * (2, 2, 2), 7.0, 0.05, ["O", "Si"]))
    assert 0.05 < value < 2.0 and set(terms) == {"F(Q)"}


# ----------------------------------------------------------------------------- evaluation
def _collapsing(space):
    """A candidate whose liquid collapses: huge Si-O dispersion beats the wall."""
    collapse = space.parameter_set(space.base_values(), "collapse")
    pairs = dict(collapse.pairs)
    pairs["O-Si"] = (pairs["O-Si"][0], pairs["O-Si"][1], 1.0e8, pairs["O-Si"][3])
    return type(collapse)(**{**collapse.__dict__, "pairs": pairs})


def test_absurd_candidate_gets_a_finite_penalty_and_a_reason(tiny_reference):
    """A candidate whose liquid collapses (huge Si-O dispersion beats the wall) fails alone:
    the batch goes on, the others are scored."""
    sec = load_section(_section(reference={"path": str(tiny_reference)}))
    space = build_space(sec)
    reference = load_reference(sec, space.counts)
    bks = space.parameter_set(space.base_values(), "bks")
    collapse = _collapsing(space)
    ev = Evaluator(StatePoint.from_section(sec, space.counts), reference, bks, space.settings)
    results = ev.evaluate([collapse, bks, collapse], failure_cost=3.0)
    assert [r.status for r in results] == ["failed", "ok", "failed"]
    for r in (results[0], results[2]):
        assert r.cost == 3.0 and r.reason.startswith("replica 0: steps ")
        assert any(w in r.reason for w in ("closer than", "runaway", "non-finite", "collapse"))
    assert 0 < results[1].cost < 1 and results[1].n_frames == 4
    assert set(results[1].angles) == {"O-Si-O", "Si-O-Si"}


def test_batched_candidates_do_not_depend_on_their_neighbours(tiny_reference):
    """Common starts and velocities: a candidate gets the same R_chi in any batch."""
    sec = load_section(_section(reference={"path": str(tiny_reference)}))
    space = build_space(sec)
    reference = load_reference(sec, space.counts)
    sets = [space.parameter_set(space.from_unit([u, 0.5]), f"c{u}") for u in (0.3, 0.5, 0.7)]
    ev = Evaluator(StatePoint.from_section(sec, space.counts), reference,
                   space.parameter_set(space.base_values()), space.settings)
    together = ev.evaluate(sets, 3.0)
    alone = ev.evaluate(sets[1:2], 3.0)
    assert together[1].cost == alone[0].cost
    assert len({r.cost for r in together}) == 3


def test_workers_split_the_round_and_score_as_one_batch(tiny_reference):
    """md.workers = 2: the candidates run as two batches in two processes; scores, failures,
    their order and the atom-steps are those of one batch, and a blown-up candidate fails alone."""
    sec = load_section(_section(reference={"path": str(tiny_reference)}, md={"workers": 2}))
    space = build_space(sec)
    reference = load_reference(sec, space.counts)
    base = space.parameter_set(space.base_values(), "bks")
    collapse = _collapsing(space)
    sets = [space.parameter_set(space.from_unit([0.3, 0.5]), "a"), collapse,
            space.parameter_set(space.from_unit([0.7, 0.5]), "c")]
    sp = StatePoint.from_section(sec, space.counts)
    assert sp.workers == 2
    sharded = Evaluator(sp, reference, base, space.settings)
    try:
        split = sharded.evaluate(sets, 3.0)
        assert sharded._pool is not None  # the round did run in worker processes
    finally:
        sharded.close()
    single = Evaluator(dataclasses.replace(sp, workers=1), reference, base, space.settings)
    whole = single.evaluate(sets, 3.0)
    assert [r.status for r in split] == ["ok", "failed", "ok"]
    assert [(r.cost, r.reason, r.n_frames) for r in split] == \
        [(r.cost, r.reason, r.n_frames) for r in whole]
    assert sharded.atom_steps == single.atom_steps


def test_glass_protocol_melts_quenches_and_samples_the_glass(tiny_reference):
    """melt_temperature_K: hold at the melt, cool linearly, sample at the state point. The
    quenched BKS glass at 300 K has a far sharper Si-O peak than the same cells sampled as a
    liquid at the melt temperature; the thermostat's schedule is the one documented."""
    glass = load_section(_section(state_point={"temperature_K": 300.0,
                                               "melt_temperature_K": 3600.0,
                                               "quench_steps": 400}))
    sp = StatePoint.from_section(glass, build_space(glass).counts)
    assert [sp.setpoint_K(s) for s in (0, 39, 40, 239, 439, 440, 519)] == \
        [3600.0, 3600.0, 3600.0 - 3300.0 / 400, 1950.0, 300.0, 300.0, 300.0]
    assert sp.total_steps == 520 and sp.start_temperature_K == 3600.0
    stages = sp.protocol().stages
    assert [st.name for st in stages] == ["equilibrate", "quench", "sample"]
    liquid = load_section(_section(state_point={"temperature_K": 3600.0}))
    peaks = {}
    for name, sec in (("glass", glass), ("liquid", liquid)):
        space = build_space(sec)
        bks = space.parameter_set(space.base_values(), "bks")
        ev = Evaluator(StatePoint.from_section(sec, space.counts), _NoCost(), bks,
                       space.settings)
        result = ev.evaluate([bks], 3.0)[0]
        assert result.status == "ok", result.reason
        assert result.n_frames == 4
        peaks[name] = float(result.rdf.partials["O-Si"].max())
    assert peaks["glass"] > 1.3 * peaks["liquid"], peaks


# ----------------------------------------------------------------------------- fit, resume
@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory, tiny_reference):
    work = tmp_path_factory.mktemp("fit")
    cfg = _section(reference={"path": str(tiny_reference)})
    return run_fit(cfg, work), cfg


def test_fit_writes_history_parameter_file_and_summary(tiny_fit):
    from vitriflow.potentials.classical import buckingham_model

    result, cfg = tiny_fit
    h = result.history
    assert list(h["kind"].unique()) == ["compare", "initial", "bo", "refine"]
    assert (h.groupby("kind").size().to_dict()
            == {"compare": 1, "initial": 4, "bo": 4, "refine": 1})
    assert h["eval_id"].tolist() == list(range(len(h)))
    assert np.isfinite(h["cost"]).all()
    search = h[h["kind"] != "compare"]
    assert result.best["cost"] == search.loc[search["status"] == "ok", "cost"].min()
    assert np.all((search[["u_q_Si", "u_A_O-Si"]] >= 0) & (search[["u_q_Si", "u_A_O-Si"]] <= 1))
    model = buckingham_model(result.workdir / "fitted.yaml", cutoff=4.4, coulomb_cutoff=4.4)
    assert model.parameter_set.charges["Si"] == pytest.approx(result.best["q_Si"], rel=1e-15)
    assert result.summary["compare"]["bks"]["status"] == "ok"
    _, curves, angles, prov = read_history(result.workdir)
    assert set(curves["pair"]) == {"O-O", "O-Si", "Si-Si"} and len(angles)
    assert prov["fit_digest"] == result.summary["fit_digest"]


def test_killed_fit_resumes_to_the_same_history(tmp_path, tiny_fit):
    full, cfg = tiny_fit
    work = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_fit(cfg, work, stop_after_rounds=3)  # compare, initial, first bo round
    partial = read_history(work)[0]
    assert sorted(partial["round"].unique()) == [0, 1, 2]
    resumed = run_fit(cfg, work)
    pd.testing.assert_frame_equal(resumed.history, full.history, check_exact=True)
    pd.testing.assert_frame_equal(resumed.curves, full.curves, check_exact=True)
    assert (work / "fitted.yaml").read_text().split("provenance")[0] == \
        (full.workdir / "fitted.yaml").read_text().split("provenance")[0]
    # a history of other settings is not resumed
    other = copy.deepcopy(cfg)
    other["budget"]["rounds"] = 1
    again = run_fit(other, work)
    assert again.history["kind"].tolist().count("bo") == 2


def test_report_section_has_figures_table_and_headline(tiny_fit, tmp_path):
    from vitriflow.forcefield_fit.report import write_section_html
    from vitriflow.report import section_headlines

    result, _ = tiny_fit
    out = tmp_path / "80_forcefield_fit.html"
    write_section_html(out, result.workdir, result.reference)
    html = out.read_text()
    assert html.count("<img") == 3  # R_chi by round, partial g(r), bond angles
    assert "<table" in html and "chik" in html and "q_Si" in html
    (card,) = section_headlines(html)
    assert card["label"] == "Force-field fit R_chi" and card["kind"] in ("good", "bad")


def test_report_draws_the_neutron_fq_of_fit_and_published_sets(tiny_fit, tmp_path, shared_data):
    """With a measured F(Q) as reference the section states the protocol and draws F(Q)."""
    from vitriflow.forcefield_fit.optimize import read_history
    from vitriflow.forcefield_fit.report import fq_figure, section_html, state_point_text

    result, _ = tiny_fit
    fq = shared_data / "structure_reference" / "silica_neutron_NIMROD" / "SiO2_NIMROD_FQ.csv"
    sec = load_section(_section(reference={"kind": "neutron_fq", "path": str(fq),
                                           "q_min": 2.0, "q_max": 15.0}))
    reference = load_reference(sec, {"Si": 16, "O": 32})
    history, curves, _, _ = read_history(result.workdir)
    html = fq_figure(reference, curves, history, sec)
    assert html.count("<img") == 1 and "2-15 1/Å" in html
    html = section_html(result.workdir, reference, section=sec)
    assert html.count("<img") == 4  # R_chi by round, F(Q), partial g(r), bond angles
    assert "liquid at 3600 K: 0.04 ps equilibrated, 0.08 ps sampled" in html
    glass = load_section(_section(state_point={"temperature_K": 300.0,
                                               "melt_temperature_K": 3600.0,
                                               "quench_steps": 400}))
    text = state_point_text(glass)
    assert "glass: 0.04 ps at 3600 K, quenched to 300 K in 0.4 ps (8250 K/ps)" in text


# ----------------------------------------------------------------------------- recovery
# Free parameters q_Si and A_O-O (the thesis's 2-D demonstrations free q_Si and one short-range
# term): with Si-O fixed, q_Si sets the Si-O bond length and the second shells and is resolved to
# a few per cent; A_O-O trades off against q_Si along a shallow valley (A_O-O +25 % ~ q_Si +4 %),
# so recovering q_Si within 5 % needs the search to find the valley floor, not just the valley.
# (A_O-Si instead makes the valley almost flat: q_Si +-8 % costs only ~1.4x the noise.) 96-atom
# cells, 5.5 Å cutoffs, 0.3 ps equilibration + 1 ps sampling at 3600 K from BKS liquids.
RECOVERY = {
    "cutoff": 5.5, "coulomb_cutoff": 5.5, "alpha": 0.3,
    "free": {"q_Si": [1.2, 3.6], "A_O-O": [690.0, 2100.0]},
    "state_point": {"atoms_per_cell": 96, "premelt_steps": 1500, "prerelax_steps": 0,
                    "equilibration_steps": 300, "sampling_steps": 1000, "sample_every": 20,
                    "replicas": 2},
    "md": {"dtype": "float32", "compile": False},
    "reference": {"kind": "partials_csv", "r_max": 5.5, "dr": 0.1},
    "compare_with": ["bks"], "failure_cost": 3.0,
    "budget": {"initial_points": 8, "rounds": 8, "q": 5, "seed": 12, "mc_samples": 128,
               "num_restarts": 4, "raw_samples": 128},
    "refinement": {"rounds": 2, "starts": 4, "points": 2, "radius": 0.1},
}


@pytest.mark.slow
def test_fit_recovers_bks_from_a_bks_reference(tmp_path):
    """Reference: BKS (4 replicas x 2 ps). Noise: R_chi between three further independent BKS
    runs of the size of one evaluation (2 replicas x 1 ps each), each pair both ways. The fit,
    whose initial design keeps away from BKS, must reach that noise (at most its mean + 2 sd:
    below the mean alone is a coin toss that the last bit of a force sum can flip) and recover
    q_Si within 5 %. Near BKS the cost has a shallow valley along q_Si and A_O-O rising together;
    the 8 BO rounds are the budget at which the fit reaches its floor for 5 of the budget seeds
    11-16 (with 5 rounds: 1 of 3), so a change in the last bits of the MD rarely flips it."""
    from vitriflow.analysis.rdf import average_rdf

    cfg = copy.deepcopy(RECOVERY)
    cfg["reference"]["path"] = str(tmp_path / "bks.csv")
    _bks_reference(cfg, tmp_path / "bks.csv", seed=100, replicas=4, sampling_steps=2000)
    space = check_config(cfg)
    reference = load_reference(load_section(cfg), space.counts)
    replicas = _bks_run(cfg, seed=200, replicas=6, sampling_steps=1000).replica_rdfs
    runs = [average_rdf(replicas[k:k + 2]) for k in (0, 2, 4)]
    noise = [Reference("partials", reference.pairs, reference.r_min, reference.r_max, "run",
                       r=a.r, partials=a.partials).cost(b)[0]
             for a in runs for b in runs if a is not b]
    vs_reference = [reference.cost(run)[0] for run in runs]
    lo, hi = np.array(space.lower), np.array(space.upper)
    truth = np.array([space.base_values()[n] for n in space.names])
    assert np.all(lo <= 0.5 * truth) and np.all(hi >= 1.5 * truth)
    unit = sobol_design(space.dim, 8, derived_seed(cfg["budget"]["seed"], "sobol"))
    design = lo + unit * (hi - lo)
    assert not np.any(np.all(np.abs(design / truth - 1) <= 0.2, axis=1))  # BKS not handed over
    result = run_fit(cfg, tmp_path / "fit")
    print(f"noise (run vs run) {np.round(noise, 4)}, BKS runs vs the reference "
          f"{np.round(vs_reference, 4)}, in the fit's batch "
          f"{result.summary['compare']['bks']['cost']:.4f}, "
          f"best {result.best['cost']:.4f} at q_Si {result.best['q_Si']:.4f}, "
          f"A_O-O {result.best['A_O-O']:.1f} ({len(result.history) - 1} candidates)")
    assert result.best["cost"] <= np.mean(noise) + 2 * np.std(noise)
    assert abs(result.best["q_Si"] / BKS_Q - 1) < 0.05
