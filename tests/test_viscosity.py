"""Viscosity surrogate: equations' constraints, training, determinism, save/load, presets,
start-up checks and the command line."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from vitriflow.config import with_defaults
from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL
from vitriflow.surrogates.viscosity import equations as eq
from vitriflow.surrogates.viscosity import tensors
from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
from vitriflow.surrogates.viscosity.evaluate import rmse_difference, uncertainty_table
from vitriflow.surrogates.viscosity.features import OXIDES, descriptors, oxide_matrix
from vitriflow.surrogates.viscosity.network import MeltNet, viscosity
from vitriflow.surrogates.viscosity.predict import prediction_grid
from vitriflow.surrogates.viscosity.presets import estimator_params, load_preset

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "config" / "viscosity"
FULL = load_preset(PRESETS / "full.yaml")

torch.set_num_threads(1)


def _random_params(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    # compositions from a seeded generator: torch's global RNG starts from a random seed in
    # every process, and a few random-weight draws saturate at the high-T limit (flaky test)
    x = torch.tensor(np.random.default_rng(seed).dirichlet(np.ones(6), n))
    net = MeltNet(39, hidden=16, layers=2, dropout=0.0).double()  # float64: exact identities
    with torch.no_grad():
        for prm in net.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g) * 0.15)
    x = x.double()
    feats = torch.tensor(descriptors(x.numpy()), dtype=torch.float64)
    with torch.no_grad():
        return net(feats, x)


def test_all_equations_pass_through_1e12_at_tg():
    p = _random_params()
    out = viscosity(p, p["tg"])
    for e in eq.EQUATIONS:
        assert torch.allclose(out[e], torch.full_like(out[e], 12.0), atol=1e-9), e


def test_viscosity_decreases_with_temperature_and_constraints_hold():
    p = _random_params(seed=1)
    Ts = [p["tg"] * f for f in (1.0, 1.1, 1.3, 1.6, 2.0, 2.5)]
    vs = [viscosity(p, T) for T in Ts]
    for e in eq.EQUATIONS:
        for a, b in zip(vs, vs[1:], strict=False):
            assert (b[e] < a[e]).all(), e
    assert (p["sconf_tg"] > 0).all() and (p["cp_conf_a"] >= 0).all() and (p["cp_b"] >= 0).all()
    assert (p["fragility"] >= 12 - torch.minimum(p["ae"], p["a_am"]) - 1e-4).all()
    assert ((p["t0_vft"] > 0) & (p["t0_vft"] < p["tg"])).all()
    S = eq.sconf_at(p["tg"] * 1.5, p["tg"], p["sconf_tg"], p["cp_conf_a"], p["cp_b"])
    assert (S >= p["sconf_tg"]).all()  # entropy grows above Tg
    assert (p["density"] > 0).all()
    n = eq.sellmeier(
        torch.full((64, 1), 0.5893, dtype=torch.float64), p["sellmeier_B"], p["sellmeier_C"]
    )
    assert (n > 1).all()


def test_oxide_matrix_normalises_and_rejects():
    x = oxide_matrix(
        pd.DataFrame({o: [v] for o, v in zip(OXIDES, [75, 0, 25, 0, 0, 0], strict=True)})
    )
    assert x[0, 0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="negative oxide"):
        oxide_matrix(np.array([[1.0, -0.5, 0.5, 0, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        oxide_matrix(np.ones((2, 5)))


def _synthetic_table(seed=0, n_comp=40):
    """Small table generated from known physics (VFT-like viscosity, linear density/Tg)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_comp):
        si = rng.uniform(0.55, 0.85)
        na = rng.uniform(0, 1 - si)
        x = dict(sio2=si, al2o3=0.0, na2o=na, k2o=1 - si - na, mgo=0.0, cao=0.0)
        split = "train" if c < 28 else ("valid" if c < 34 else "test")
        tg = 600 + 600 * si
        for T in np.linspace(tg, tg + 700, 6):
            rows.append(
                {
                    **x,
                    "property": "viscosity",
                    "split": split,
                    "T_K": T,
                    "value": -4 + 16 * (tg - 0.5 * tg) / (T - 0.5 * tg),
                    "wavelength_um": np.nan,
                }
            )
        rows.append(
            {
                **x,
                "property": "tg",
                "split": split,
                "T_K": np.nan,
                "value": tg,
                "wavelength_um": np.nan,
            }
        )
        rows.append(
            {
                **x,
                "property": "density",
                "split": split,
                "T_K": np.nan,
                "value": 2.2 + 0.5 * (1 - si),
                "wavelength_um": np.nan,
            }
        )
    df = pd.DataFrame(rows)
    df["row_id"] = np.arange(len(df))
    return df


SMALL = dict(n_models=2, hidden=16, layers=2, dropout=0.0, lr=3e-3, batch_size=0, patience=1000)


def test_short_training_reduces_validation_loss():
    est = ViscositySurrogate(max_epochs=60, **SMALL).fit(_synthetic_table())
    for h in est.history_:
        assert h["valid_loss"][-1] < 0.5 * h["valid_loss"][0]
        assert h["best_valid_loss"] == pytest.approx(min(h["valid_loss"]))


def test_learned_task_weights_train_and_change_the_fit():
    t = _synthetic_table()
    fixed = ViscositySurrogate(max_epochs=40, **SMALL).fit(t)
    learned = ViscositySurrogate(max_epochs=40, learn_task_weights=True, **SMALL).fit(t)
    hist = learned.history_[0]
    assert hist["valid_loss"][-1] < hist["valid_loss"][0]
    assert not np.array_equal(
        fixed.predict(t.iloc[:5][list(OXIDES)])["tg"],
        learned.predict(t.iloc[:5][list(OXIDES)])["tg"],
    )
    again = ViscositySurrogate(max_epochs=40, learn_task_weights=True, **SMALL).fit(t)
    assert np.array_equal(
        learned.predict(t.iloc[:5][list(OXIDES)])["tg"],
        again.predict(t.iloc[:5][list(OXIDES)])["tg"],
    )


def test_gradient_clipping_bounds_each_step_and_still_trains():
    t = _synthetic_table()
    free = ViscositySurrogate(max_epochs=30, **SMALL).fit(t)
    clipped = ViscositySurrogate(max_epochs=30, grad_clip=0.05, **SMALL).fit(t)
    h = clipped.history_[0]
    assert h["valid_loss"][-1] < h["valid_loss"][0]
    # a norm of 0.05 binds on this problem: the clipped run takes different steps
    assert h["train_loss"] != free.history_[0]["train_loss"]
    assert clipped.get_params()["grad_clip"] == 0.05


def test_parallel_candidates_match_sequential(tmp_path):
    t = _synthetic_table()
    seq = ViscositySurrogate(max_epochs=8, n_candidates=3, **SMALL).fit(t)
    par = ViscositySurrogate(max_epochs=8, n_candidates=3, n_jobs=2, **SMALL).fit(
        t, checkpoint_dir=tmp_path
    )
    assert [h["candidate"] for h in seq.history_] == [h["candidate"] for h in par.history_]
    x = t.iloc[:5][list(OXIDES)]
    assert np.array_equal(seq.predict(x)["tg"], par.predict(x)["tg"])
    # worker processes write their networks too, and those resume a sequential fit
    assert len(list(tmp_path.glob("candidate*.pt"))) == 3
    again = ViscositySurrogate(max_epochs=8, n_candidates=3, **SMALL).fit(
        t, checkpoint_dir=tmp_path
    )
    assert np.array_equal(again.predict(x)["tg"], par.predict(x)["tg"])


def test_fixed_seed_is_deterministic_on_cpu(tmp_path):
    t = _synthetic_table()
    a = ViscositySurrogate(max_epochs=8, seed=3, **SMALL).fit(t)
    b = ViscositySurrogate(max_epochs=8, seed=3, **SMALL).fit(t)
    X = t.loc[:5, list(OXIDES)]
    pa, pb = a.predict(X, T=1200.0), b.predict(X, T=1200.0)
    pd.testing.assert_frame_equal(pa, pb)
    a.save(tmp_path / "a.pt", mode="demo")
    b.save(tmp_path / "b.pt", mode="demo")
    assert (tmp_path / "a.pt").read_bytes() == (
        tmp_path / "b.pt"
    ).read_bytes()  # no wall times inside
    c = ViscositySurrogate(max_epochs=8, seed=4, **SMALL).fit(t)
    assert not np.allclose(c.predict(X, T=1200.0)["tg"], pa["tg"])


def test_melt_weight_power_one_counts_each_melt_once():
    """Repeating one training melt's viscosity series 5 times moves a row-weighted fit (p = 0)
    and leaves a melt-weighted fit (p = 1) where it was."""
    t = _synthetic_table()
    series = t[(t["property"] == "viscosity") & (t["split"] == "train")]
    first = series[series["sio2"] == series["sio2"].iloc[0]]
    repeated = pd.concat([t] + [first] * 4, ignore_index=True).assign(
        row_id=lambda d: np.arange(len(d))
    )
    X = t.loc[t["split"] == "test", list(OXIDES)]

    def fit(table, p):
        return (
            ViscositySurrogate(max_epochs=20, melt_weight_power=p, **SMALL)
            .fit(table)
            .predict(X, T=1300.0)
        )

    np.testing.assert_allclose(
        fit(repeated, 1.0)["viscosity_vft"], fit(t, 1.0)["viscosity_vft"], rtol=1e-4
    )
    assert not np.allclose(
        fit(repeated, 0.0)["viscosity_vft"], fit(t, 0.0)["viscosity_vft"], rtol=1e-3
    )
    with pytest.raises(ValueError, match="melt_weight_power"):
        ViscositySurrogate(max_epochs=2, melt_weight_power=2, **SMALL).fit(t)


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    t = _synthetic_table()
    est = ViscositySurrogate(max_epochs=5, **SMALL).fit(t)
    est.save(tmp_path / "m.pt", note="test")
    back = ViscositySurrogate.load(tmp_path / "m.pt")
    assert back.get_params() == est.get_params()
    X = t.loc[:10, list(OXIDES)]
    pd.testing.assert_frame_equal(est.predict(X, T=1100.0), back.predict(X, T=1100.0))
    pt_a, pt_b = est.predict_table(t), back.predict_table(t)
    pd.testing.assert_frame_equal(pt_a, pt_b)
    assert set(pt_a["equation"]) == {"", *eq.EQUATIONS}
    assert (pt_a["y_std"] >= 0).all()


def test_candidate_selection_keeps_lowest_validation_loss():
    t = _synthetic_table()
    sel = ViscositySurrogate(max_epochs=20, n_candidates=4, **SMALL).fit(t)
    everyone = ViscositySurrogate(max_epochs=20, **{**SMALL, "n_models": 4}).fit(t)
    losses = [h["best_valid_loss"] for h in everyone.history_]  # same seeds: same 4 candidates
    kept = [h["candidate"] for h in sel.history_]
    assert len(sel.members_) == 2 and kept == sorted(np.argsort(losses)[:2].tolist())
    assert {h["candidate"] for h in sel.rejected_candidates_} == set(range(4)) - set(kept)
    assert max(h["best_valid_loss"] for h in sel.history_) <= min(
        h["best_valid_loss"] for h in sel.rejected_candidates_
    )


def test_cosine_schedule_and_bad_schedule():
    t = _synthetic_table()
    est = ViscositySurrogate(max_epochs=40, lr_schedule="cosine", **SMALL).fit(t)
    assert est.history_[0]["valid_loss"][-1] < 0.5 * est.history_[0]["valid_loss"][0]
    with pytest.raises(ValueError, match="lr_schedule"):
        ViscositySurrogate(max_epochs=2, lr_schedule="step", **SMALL).fit(t)


def test_early_stopping_on_viscosity_only():
    t = _synthetic_table()
    tot = ViscositySurrogate(max_epochs=20, **SMALL).fit(t)
    vis = ViscositySurrogate(max_epochs=20, early_stopping_on="viscosity", **SMALL).fit(t)
    for a, b in zip(tot.history_, vis.history_, strict=True):
        # same seed, same training trajectory: the viscosity term alone is below the total
        assert all(v < w for v, w in zip(b["valid_loss"], a["valid_loss"], strict=True))
        assert b["best_valid_loss"] == pytest.approx(min(b["valid_loss"]))
    with pytest.raises(ValueError, match="early_stopping_on"):
        ViscositySurrogate(max_epochs=2, early_stopping_on="colour", **SMALL).fit(t)


def test_refit_retrains_on_train_plus_valid_for_the_early_stopped_epochs():
    t = _synthetic_table()
    base = ViscositySurrogate(max_epochs=60, **{**SMALL, "patience": 15}).fit(t)
    refit = ViscositySurrogate(max_epochs=60, refit=True, **{**SMALL, "patience": 15}).fit(t)
    for b, r in zip(base.history_, refit.history_, strict=True):
        assert r["best_epoch"] == b["best_epoch"]  # selection unchanged by the refit
        assert r["refit_epochs"] == b["best_epoch"] + 1
    d = tensors.build(t, splits=("train", "valid"))
    pooled = tensors.merge_splits(d)
    assert set(pooled.tasks) == {"train"}
    for prop, rows in pooled.tasks["train"].items():
        assert len(rows.y) == len(d.tasks["train"][prop].y) + len(d.tasks["valid"][prop].y)
    # the refitted members have seen the validation melts: they fit them better
    valid = t[t["split"] == "valid"]

    def rmse(est):
        p = est.predict_table(valid)
        return float(np.sqrt(np.mean((p["y_pred"] - p["y_true"]) ** 2)))

    assert rmse(refit) < rmse(base)
    # without a validation split there is nothing to refit on: a plain fit
    no_valid = t[t["split"] != "valid"]
    again = ViscositySurrogate(max_epochs=10, refit=True, **SMALL).fit(no_valid)
    assert "refit_epochs" not in again.history_[0]


GROUPS = [
    {"properties": ["viscosity", "tg", "sconf_tg", "cp_liquid"], "lr": 5e-3},
    {
        "properties": [
            "density",
            "refractive_index",
            "liquidus",
            "elastic_modulus",
            "cte",
            "abbe_number",
        ],
        "hidden": 8,
        "learn_task_weights": True,
    },
]


def test_task_groups_train_one_network_per_group(tmp_path):
    t = _synthetic_table()
    est = ViscositySurrogate(max_epochs=15, task_groups=GROUPS, **SMALL).fit(t)
    visc = ViscositySurrogate(max_epochs=15, **{**SMALL, "lr": 5e-3}).fit(
        t[t["property"] != "density"]
    )
    dens = ViscositySurrogate(max_epochs=15, learn_task_weights=True, **{**SMALL, "hidden": 8}).fit(
        t[t["property"] == "density"]
    )
    X = t.loc[:10, list(OXIDES)]
    got = est.predict(X, T=1100.0)
    # each column comes from the network of the group that owns it
    for col, ref in (
        ("viscosity_fv", visc),
        ("tg", visc),
        ("fragility", visc),
        ("density", dens),
        ("molar_volume", dens),
        ("density_std", dens),
    ):
        np.testing.assert_array_equal(got[col], ref.predict(X, T=1100.0)[col], err_msg=col)
    assert {h["group"] for h in est.history_} == {0, 1}
    est.save(tmp_path / "g.pt")
    back = ViscositySurrogate.load(tmp_path / "g.pt")
    pd.testing.assert_frame_equal(est.predict(X, T=1100.0), back.predict(X, T=1100.0))
    pt = back.predict_table(t)
    assert sorted(pt["row_id"]) == sorted(
        t["row_id"].tolist() + 4 * t.loc[t["property"] == "viscosity", "row_id"].tolist()
    )


@pytest.mark.parametrize(
    "groups, match",
    [
        ([{"properties": ["viscosity", "tg", "sconf_tg", "cp_liquid"]}], "in no group"),
        (
            [
                {"properties": ["viscosity", "tg", "sconf_tg"]},
                {
                    "properties": [
                        "cp_liquid",
                        "density",
                        "refractive_index",
                        "liquidus",
                        "elastic_modulus",
                        "cte",
                        "abbe_number",
                    ]
                },
            ],
            "must be in one group",
        ),
        ([{**GROUPS[0], "colour": 1}, GROUPS[1]], r"task_groups\[0\]: .*'colour' was unexpected"),
        ([{**GROUPS[0], "seed": 1}, GROUPS[1]], r"task_groups\[0\]: .*'seed' was unexpected"),
        (
            [GROUPS[0], {**GROUPS[1], "properties": [*GROUPS[1]["properties"], "tg"]}],
            "already in group 0",
        ),
        (
            [GROUPS[0], {"properties": ["visc"]}],
            r"task_groups\[1\].properties\[0\]: 'visc' is not one of",
        ),
        (
            [GROUPS[0], {**GROUPS[1], "lr_schedule": "step"}],
            r"task_groups\[1\].lr_schedule: 'step'",
        ),
        (
            [{**GROUPS[0], "auxiliary": ["tg"]}, GROUPS[1]],
            r"task_groups\[0\].auxiliary: 'tg'; expected a property of another",
        ),
        ([{**GROUPS[0], "auxiliary": ["dens"]}, GROUPS[1]], r"auxiliary\[0\]: 'dens'"),
    ],
)
def test_task_groups_are_validated(groups, match):
    with pytest.raises(ValueError, match=match):
        ViscositySurrogate(max_epochs=2, task_groups=groups, **SMALL).fit(_synthetic_table())


def test_auxiliary_properties_are_trained_on_but_predicted_by_their_owner(tmp_path):
    t = _synthetic_table()
    t.loc[t["split"] == "test", "split"] = (
        "valid"  # 12 validation melts: density gets a noise model
    )
    groups = [{**GROUPS[0], "auxiliary": ["density"]}, GROUPS[1]]
    est = ViscositySurrogate(max_epochs=15, task_groups=groups, **SMALL).fit(t)
    visc_with_density = ViscositySurrogate(max_epochs=15, **{**SMALL, "lr": 5e-3}).fit(
        t
    )  # all rows
    dens = ViscositySurrogate(max_epochs=15, learn_task_weights=True, **{**SMALL, "hidden": 8}).fit(
        t[t["property"] == "density"]
    )
    X = t.loc[:10, list(OXIDES)]
    got = est.predict(X, T=1100.0)
    np.testing.assert_array_equal(
        got["tg"], visc_with_density.predict(X, T=1100.0)["tg"]
    )  # density rows trained it
    np.testing.assert_array_equal(
        got["density"], dens.predict(X, T=1100.0)["density"]
    )  # the owner predicts
    assert "density_nearest_mol" in got and got.columns.tolist().count("density_nearest_mol") == 1
    assert (
        est.noise_models()["density"] == dens.noise_models()["density"]
    )  # not the auxiliary group's
    assert est.groups_[0][1].noise_models()["density"] != dens.noise_models()["density"]
    pt = est.predict_table(t)
    assert (
        len(pt) == len(t) + 4 * (t["property"] == "viscosity").sum()
    )  # every row once (5 equations)
    est.save(tmp_path / "a.pt")
    pd.testing.assert_frame_equal(
        got, ViscositySurrogate.load(tmp_path / "a.pt").predict(X, T=1100.0)
    )


def test_load_rejects_foreign_file(tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a vitriflow viscosity model"):
        ViscositySurrogate.load(tmp_path / "x.pt")


def test_config_presets_and_prediction_grid():
    section = with_defaults("viscosity", {"mode": "demo", "seed": 7, "model": {"n_models": 2}})
    est = ViscositySurrogate(**estimator_params(section, load_preset(PRESETS / "demo.yaml")))
    assert est.n_models == 2 and est.seed == 7 and est.hidden == 64
    with pytest.raises(
        ValueError, match=r"huge.yaml: no such preset file; expected one of \['demo', 'full'"
    ):
        load_preset(PRESETS / "huge.yaml")
    frame, T = prediction_grid([{"label": "NS3", "sio2": 75, "na2o": 25}], [1000, 1200])
    assert list(frame["label"]) == ["NS3", "NS3"] and list(T) == [1000, 1200]
    assert frame["sio2"].iloc[0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="temperatures_K"):
        prediction_grid([{"label": "a", "sio2": 1}], [-3])
    # amounts that are neither fractions nor mol% are refused, not silently rescaled
    with pytest.raises(ValueError, match=r"\[0\] \(short\): oxide amounts sum to 90; expected 1"):
        prediction_grid([{"label": "short", "sio2": 70, "na2o": 20}], [1000])


def _two_model_preds(err_a, err_b, rows_per_comp=3):
    """Long-format predictions of two models on len(err_a) compositions x rows_per_comp rows."""
    n = len(err_a)
    comp = np.repeat(np.arange(n), rows_per_comp)
    base = pd.DataFrame(
        {
            "row_id": np.arange(comp.size),
            "property": "tg",
            "equation": "",
            "split": "test",
            "y_true": 1000.0,
        }
    )
    base[list(OXIDES)] = 0.0
    base["sio2"] = 0.5 + comp / (2.0 * n)
    base["na2o"] = 1.0 - base["sio2"]
    return {
        m: base.assign(y_pred=1000.0 + np.asarray(e, float)[comp])
        for m, e in (("vitriflow", err_a), ("i-Melt", err_b))
    }


def test_rmse_difference_paired_bootstrap_over_compositions():
    rng = np.random.default_rng(0)
    # a better on every glass: the whole interval is below 0
    out = rmse_difference(_two_model_preds(rng.normal(0, 5, 20), rng.normal(0, 15, 20)), n_boot=500)
    row = out.set_index("target").loc["tg"]
    assert (
        row["n_compositions"] == 20 and row["diff_ci_high"] < 0 and row["p_vitriflow_lower"] > 0.99
    )
    # one glass decides the ranking: a is better on 19 of 20 glasses but loses on RMSE, and
    # the interval must say the split cannot separate them
    err_a, err_b = np.full(20, 4.0), np.full(20, 5.0)
    err_a[0] = 40.0
    preds = _two_model_preds(err_a, err_b)
    plain = np.sqrt(np.mean(err_a**2)) - np.sqrt(np.mean(err_b**2))
    row = rmse_difference(preds, n_boot=2000).set_index("target").loc["tg"]
    assert plain > 0 and row["diff_ci_low"] < 0 < row["diff_ci_high"]
    assert 0.2 < row["p_vitriflow_lower"] < 0.5  # resamples without that glass favour a
    assert row["worst_melt_share_vitriflow"] == pytest.approx(1600 / (1600 + 19 * 16))
    assert row["worst_melt_share_i-Melt"] == pytest.approx(1 / 20)
    # same seed, same table; rows of a composition move together (3 rows count once)
    again = rmse_difference(preds, n_boot=2000).set_index("target").loc["tg"]
    assert row.equals(again)


def test_real_data_smoke_fit(tmp_path):
    pytest.importorskip("imelt")
    from vitriflow.surrogates.viscosity.data import ingest

    good, _, _ = ingest()
    sub = good[good.property.isin(["viscosity", "tg", "density"])]
    est = ViscositySurrogate(n_models=1, hidden=16, layers=2, max_epochs=3, batch_size=0).fit(sub)
    out = est.predict_table(sub[sub.split == "test"])
    assert len(out) == 5 * 626 + 15 + 69 and np.isfinite(out["y_pred"]).all()


def test_full_preset_and_documented_task_groups_are_valid():
    """The shipped presets and the config README's example pass the preset schema and the
    estimator's own checks (a typo there would only surface after minutes of training)."""
    from vitriflow.surrogates.viscosity.options import validate_options

    text = (REPO / "config" / "README.md").read_text()
    block = re.search(r"```yaml\n(\s*viscosity:\n\s+model:\n\s+task_groups:.*?)```", text, re.S)
    assert block, "config/README.md: task_groups example not found"
    cfg = yaml.safe_load(textwrap.dedent(block.group(1)))["viscosity"]
    validate_options(cfg["model"], where="viscosity.model")
    for groups in (cfg["model"]["task_groups"], FULL["task_groups"]):
        est = ViscositySurrogate(task_groups=groups)
        props = [p for g, _, _ in est._group_estimators() for p in g]
        assert sorted(props) == sorted(set(props)) and len(props) == 10
    full = ViscositySurrogate(
        **estimator_params(with_defaults("viscosity", {"mode": "full"}), FULL)
    )
    assert [g.n_models for _, _, g in full._group_estimators()] == [
        g.get("n_models", FULL["n_models"]) for g in FULL["task_groups"]
    ]
    for preset in sorted(PRESETS.glob("*.yaml")):  # every shipped preset is a valid one
        ViscositySurrogate(**load_preset(preset))._check_options()


def test_report_says_which_splits_trained_the_model():
    from vitriflow.surrogates.viscosity.report import _ensemble_note, _protocol_note

    note = _ensemble_note(
        {
            "n_models": 16,
            "task_groups": [
                {"properties": ["density"], "auxiliary": ["refractive_index"]},
                {"properties": ["tg"], "n_models": 8},
            ],
        }
    )
    assert note == (
        "one bagged ensemble per task group (density: 16 members, also trained on "
        "refractive_index; "
        "tg: 8 members)"
    )

    assert "early-stopped on the validation split" in _protocol_note(FULL)
    assert "refitted" not in _protocol_note(FULL)
    assert "then refitted on train + valid" in _protocol_note({**FULL, "refit": True})
    one = {
        **FULL,
        "task_groups": [{**FULL["task_groups"][0], "refit": True}, *FULL["task_groups"][1:]],
    }
    assert "groups with refit: true" in _protocol_note(one)
    assert "refitted" in _protocol_note({"refit": True})


def test_linear_skip_starts_neutral_trains_and_round_trips(tmp_path):
    x = torch.tensor(
        oxide_matrix(
            pd.DataFrame(
                {
                    "sio2": [75.0, 60.0],
                    "al2o3": 0.0,
                    "na2o": [25.0, 20.0],
                    "k2o": 0.0,
                    "mgo": 0.0,
                    "cao": [0.0, 20.0],
                }
            )
        ),
        dtype=torch.float32,
    )
    f = torch.randn(2, 39, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    plain = MeltNet(39, 16, 2, 0.0).eval()
    torch.manual_seed(0)
    skip = MeltNet(39, 16, 2, 0.0, linear_skip=True).eval()
    for k, v in plain(f, x).items():  # the skip path starts at zero: same untrained network
        torch.testing.assert_close(v, skip(f, x)[k])
    t = _synthetic_table()
    est = ViscositySurrogate(max_epochs=30, linear_skip=True, **SMALL).fit(t)
    assert est.history_[0]["valid_loss"][-1] < 0.5 * est.history_[0]["valid_loss"][0]
    assert float(est.members_[0]["skip.weight"].abs().sum()) > 0
    est.save(tmp_path / "m.pt")
    X = t.loc[:10, list(OXIDES)]
    pd.testing.assert_frame_equal(
        est.predict(X, T=1100.0), ViscositySurrogate.load(tmp_path / "m.pt").predict(X, T=1100.0)
    )


def test_noise_model_recovers_scale_and_floor_and_never_narrows_the_spread():
    rng = np.random.default_rng(0)
    s = rng.uniform(0.01, 0.3, 20000)
    r = rng.normal(0.0, np.sqrt((2.0 * s) ** 2 + 0.1**2))
    m = cal.fit_noise_model(r, s)
    assert m["a"] == pytest.approx(2.0, rel=0.05) and m["b"] == pytest.approx(0.1, rel=0.1)
    assert m["n"] == 20000
    assert cal.coverage(r, cal.predictive_std(s, m), 0.95) == pytest.approx(0.95, abs=0.01)
    # an ensemble that is too cautious is left as it is (a >= 1), not made more confident
    wide = cal.fit_noise_model(rng.normal(0.0, 0.3 * s), s)
    assert wide["a"] == pytest.approx(1.0) and wide["b"] < 1e-3
    assert cal.fit_noise_model(r[: cal.MIN_ROWS - 1], s[: cal.MIN_ROWS - 1]) is None
    np.testing.assert_array_equal(cal.predictive_std(s, None), s)


def test_fit_calibrates_uncertainty_on_validation_rows(tmp_path):
    t = _synthetic_table()
    est = ViscositySurrogate(max_epochs=30, **SMALL).fit(t)
    models = est.noise_models()
    # 36 validation viscosities per equation are enough; 6 Tg / density values are not
    assert set(models) == {f"viscosity:{e}" for e in eq.EQUATIONS}
    assert all(m["a"] >= 1.0 and m["n"] == 36 for m in models.values())
    pt = est.predict_table(t[t["split"] == "test"])
    v = pt[pt["equation"] == "fv"]
    np.testing.assert_allclose(
        v["y_std"], cal.predictive_std(v["y_spread"], models["viscosity:fv"])
    )
    assert (v["y_std"] > v["y_spread"]).all()
    tg = pt[pt["property"] == "tg"]
    np.testing.assert_array_equal(tg["y_std"], tg["y_spread"])
    X = t.loc[t["split"] == "test", list(OXIDES)].iloc[:3]
    wide = est.predict(X, T=1300.0)
    assert (wide["viscosity_fv_std"] > 0).all()
    est.save(tmp_path / "m.pt")
    assert ViscositySurrogate.load(tmp_path / "m.pt").noise_models() == models
    cover = uncertainty_table(pt, models)
    row = cover.set_index("target").loc["viscosity:fv"]
    assert row["n"] == 36 and row["n_calibration"] == 36 and row["a"] == models["viscosity:fv"]["a"]
    r = (v["y_pred"] - v["y_true"]).to_numpy()
    assert row["cover_95"] == cal.coverage(r, v["y_std"].to_numpy(), 0.95)
    assert row["cover_95"] >= row["spread_cover_95"]
    assert np.isnan(cover.set_index("target").loc["tg", "a"])
    # without a validation split there is nothing to calibrate on
    plain = ViscositySurrogate(max_epochs=5, **SMALL).fit(t[t["split"] != "valid"])
    assert plain.noise_models() == {}


def test_interrupted_fit_resumes_from_checkpoints_with_the_same_result(tmp_path, monkeypatch):
    t = _synthetic_table()
    params = dict(max_epochs=20, task_groups=GROUPS, **{**SMALL, "n_models": 2})
    ckpt = tmp_path / "ckpt"
    whole = ViscositySurrogate(**params).fit(t, checkpoint_dir=ckpt)
    files = sorted(p.relative_to(ckpt).as_posix() for p in ckpt.rglob("*.pt"))
    assert files == [
        "group0/candidate0.pt",
        "group0/candidate1.pt",
        "group1/candidate0.pt",
        "group1/candidate1.pt",
    ]
    # a run killed after three networks: the fourth is trained, the others are read back
    (ckpt / "group1" / "candidate1.pt").unlink()
    trained = []
    real = ViscositySurrogate._fit_member
    monkeypatch.setattr(
        ViscositySurrogate,
        "_fit_member",
        lambda self, k, *a, **kw: trained.append(k) or real(self, k, *a, **kw),
    )
    resumed = ViscositySurrogate(**params).fit(t, checkpoint_dir=ckpt)
    assert trained == [1] and resumed.resumed_networks_ == 3 and whole.resumed_networks_ == 0
    X = t.loc[:10, list(OXIDES)]
    pd.testing.assert_frame_equal(resumed.predict(X, T=1100.0), whole.predict(X, T=1100.0))
    # a file cut short by the kill is retrained, not trusted
    (ckpt / "group0" / "candidate0.pt").write_bytes(b"truncated")
    trained.clear()
    again = ViscositySurrogate(**params).fit(t, checkpoint_dir=ckpt)
    assert trained == [0]
    pd.testing.assert_frame_equal(again.predict(X, T=1100.0), whole.predict(X, T=1100.0))
    # other settings (or other data) never pick up these networks
    trained.clear()
    ViscositySurrogate(**{**params, "max_epochs": 21}).fit(t, checkpoint_dir=ckpt)
    assert trained == [0, 1, 0, 1]
    trained.clear()
    ViscositySurrogate(**params).fit(t.assign(value=t["value"] * 1.01), checkpoint_dir=ckpt)
    assert trained == [0, 1, 0, 1]


def test_lorentz_lorenz_ties_refractive_index_to_molar_volume():
    B = torch.tensor([[0.7, 0.4, 0.9]], dtype=torch.float64)
    C = torch.tensor([[0.005, 0.015, 100.0]], dtype=torch.float64)
    R, V = torch.tensor([[7.5]], dtype=torch.float64), torch.tensor([[27.3]], dtype=torch.float64)
    lbd_d = torch.tensor([eq.LAMBDA_D_UM], dtype=torch.float64)
    n_d = eq.lorentz_lorenz(lbd_d, R, V, B, C)
    r = 7.5 / 27.3  # at the D line the dispersion factor is 1: (n^2 - 1) / (n^2 + 2) = R / V
    assert float(n_d) == pytest.approx(np.sqrt((1 + 2 * r) / (1 - r)), rel=1e-12)
    assert float(eq.lorentz_lorenz(lbd_d, 2 * R, 2 * V, B, C)) == pytest.approx(
        float(n_d), rel=1e-12
    )
    assert float(eq.lorentz_lorenz(lbd_d, R, 0.9 * V, B, C)) > float(n_d)  # denser glass, higher n
    lbd = torch.tensor([0.4, 0.5, 0.6, 0.8, 1.0], dtype=torch.float64)
    n = eq.lorentz_lorenz(lbd, R.expand(5, 1), V.expand(5, 1), B.expand(5, 3), C.expand(5, 3))
    assert (n.diff(dim=0) < 0).all()  # normal dispersion in the visible


def test_lorentz_lorenz_option_trains_round_trips_and_refuses_unknown_law(tmp_path):
    t = _synthetic_table()
    comps = t.drop_duplicates("sio2")[["sio2", "al2o3", "na2o", "k2o", "mgo", "cao", "split"]]
    x = oxide_matrix(comps)
    v = x @ np.array([27.3, 36.7, 29.7, 47.3, 12.7, 20.7])
    r = (x @ np.array([7.5, 13.0, 9.0, 15.0, 5.5, 10.0])) / v
    ri = comps.assign(
        property="refractive_index",
        T_K=np.nan,
        wavelength_um=0.5893,
        value=np.sqrt((1 + 2 * r) / (1 - r)),
    )
    t = pd.concat([t, ri], ignore_index=True).assign(row_id=lambda d: np.arange(len(d)))
    est = ViscositySurrogate(max_epochs=40, refractive_index_law="lorentz_lorenz", **SMALL).fit(t)
    assert est.history_[0]["valid_loss"][-1] < 0.5 * est.history_[0]["valid_loss"][0]
    assert est.members_[0]["head.weight"].shape[0] == 40  # 6 partial molar refractivities added
    est.save(tmp_path / "m.pt")
    X = t.loc[:10, list(OXIDES)]
    pd.testing.assert_frame_equal(
        est.predict(X), ViscositySurrogate.load(tmp_path / "m.pt").predict(X)
    )
    with pytest.raises(ValueError, match="refractive_index_law: 'snell' is not one of"):
        ViscositySurrogate(max_epochs=2, refractive_index_law="snell", **SMALL).fit(t)


def test_reduced_inputs_train_round_trip_and_refuse_unknown_features(tmp_path):
    t = _synthetic_table()
    X = t.loc[:10, list(OXIDES)]
    for features, width in (("oxides", 6), ("charge_balance", 10)):
        est = ViscositySurrogate(max_epochs=30, features=features, **SMALL).fit(t)
        assert est.n_features_in_ == width == est.members_[0]["trunk.0.weight"].shape[1]
        assert est.history_[0]["valid_loss"][-1] < 0.5 * est.history_[0]["valid_loss"][0]
        est.save(tmp_path / f"{features}.pt")
        back = ViscositySurrogate.load(tmp_path / f"{features}.pt")
        pd.testing.assert_frame_equal(est.predict(X, T=1100.0), back.predict(X, T=1100.0))
    full = ViscositySurrogate(max_epochs=2, **SMALL).fit(t)
    assert full.n_features_in_ == 39  # the default keeps the descriptors
    with pytest.raises(ValueError, match="features: 'raw' is not one of"):
        ViscositySurrogate(max_epochs=2, features="raw", **SMALL).fit(t)


def test_charge_balance_terms_kink_at_the_charge_balanced_join():
    from vitriflow.surrogates.viscosity.features import charge_balance

    x = np.array([
        [0.75, 0.125, 0.125, 0.0, 0.0, 0.0],  # albite join: Na2O = Al2O3
        [0.75, 0.0, 0.25, 0.0, 0.0, 0.0],  # Na2O-3SiO2: every Na makes non-bridging oxygens
        [0.60, 0.25, 0.0, 0.0, 0.0, 0.15],  # peraluminous CAS
        [0.60, 0.20, 0.10, 0.0, 0.10, 0.0],  # Al2O3 = Na2O + MgO, excess over the alkalis
    ])
    np.testing.assert_allclose(charge_balance(x), [
        [0.0, 0.0, 0.0, 0.0],
        [0.25, 0.0, 0.25, 0.0],
        [0.0, 0.10, 0.0, 0.25],
        [0.0, 0.0, 0.0, 0.10],
    ], atol=1e-12)
    # continuous: a trace of an oxide moves the terms by the trace, not by a jump
    trace = x[1] + np.array([0.0, 0.0, 0.0, 1e-4, 0.0, 0.0])
    assert np.abs(charge_balance(trace[None]) - charge_balance(x[1:2])).max() <= 1e-4


def test_training_domain_distances_name_the_nearest_training_melt(tmp_path):
    t = _synthetic_table()
    t.loc[
        (t["property"] == "density") & (t["split"] == "train") & (t["row_id"] % 3 == 0), "split"
    ] = "skip"
    est = ViscositySurrogate(max_epochs=2, **SMALL).fit(t)
    train = t[t["split"] == "train"]
    assert set(est.domain_) == {"viscosity", "tg", "density"}
    assert (
        len(est.domain_["density"])
        == train.loc[train["property"] == "density"].shape[0]
        < len(est.domain_["tg"])
    )
    known = train.loc[train["property"] == "density", list(OXIDES)].iloc[:1]
    far = pd.DataFrame(
        [{"sio2": 0.2, "al2o3": 0.0, "na2o": 0.0, "k2o": 0.0, "mgo": 0.0, "cao": 0.8}]
    )
    got = est.predict(pd.concat([known, far], ignore_index=True) * 100, T=1100.0)  # mol% input
    assert got["density_nearest_mol"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    doms = est.domain_["density"].astype(float)
    want = 50 * np.abs(doms - far.to_numpy()).sum(axis=1).min()  # mol% that must change
    assert got["density_nearest_mol"].iloc[1] == pytest.approx(want, rel=1e-5) and want > 60
    pt = est.predict_table(t)
    trained = pt["row_id"].isin(train["row_id"])
    assert (pt.loc[trained, "nearest_mol"] < 1e-4).all()
    assert (pt.loc[pt["split"] == "test", "nearest_mol"] > 0).all()
    est.save(tmp_path / "m.pt")
    pd.testing.assert_frame_equal(
        got,
        ViscositySurrogate.load(tmp_path / "m.pt").predict(
            pd.concat([known, far], ignore_index=True) * 100, T=1100.0
        ),
    )
    refit = ViscositySurrogate(max_epochs=2, refit=True, **SMALL).fit(
        t
    )  # valid melts become training melts
    assert (
        len(refit.domain_["tg"])
        == len(est.domain_["tg"]) + (t[t["property"] == "tg"]["split"] == "valid").sum()
    )


def _section(**over):
    return with_defaults("viscosity", {"presets_dir": str(PRESETS), **over})


def test_start_up_checks_name_the_key_or_file(tmp_path):
    from vitriflow.surrogates.viscosity.checks import check_config

    assert check_config(_section()) == {"preset": str(PRESETS / "demo.yaml")}
    assert check_config(_section(mode="full"))["preset"].endswith("full.yaml")
    cases = [
        (_section(mode="fast"), r"viscosity.mode: .*fast.yaml: no such preset file"),
        (_section(model={"hiden": 3}), r"viscosity.model: .*'hiden' was unexpected"),
        (_section(model={"lr": -1.0}), r"viscosity.model.lr: -1.0 is less than or equal"),
        (
            _section(mode="full", model={"early_stopping_on": "density"}),
            r"viscosity.model.task_groups\[0\].early_stopping_on: 'density' is not trained",
        ),
        (
            _section(predict={"compositions": [{"label": "g", "sio2": 60, "na2o": 30}]}),
            r"viscosity.predict.compositions\[0\] \(g\): oxide amounts sum to 90",
        ),
        (
            _section(user_data=[str(tmp_path / "absent.csv")]),
            r"viscosity.user_data\[0\]: .*absent.csv: user data CSV not found",
        ),
    ]
    for section, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            check_config(section)
        assert "\n" not in str(info.value)
    nm = tmp_path / "nm.csv"  # wavelengths in nm: no row usable, found before any job runs
    pd.DataFrame(
        {
            "property": ["refractive_index"] * 2,
            "split": ["train"] * 2,
            "sio2": [100, 75],
            "al2o3": 0,
            "na2o": [0, 25],
            "k2o": 0,
            "mgo": 0,
            "cao": 0,
            "wavelength_um": [589.3, 589.3],
            "value": [1.458, 1.50],
        }
    ).to_csv(nm, index=False)
    with pytest.raises(ValueError, match=r"viscosity.user_data\[0\]: .*nm.csv: none of its 2 rows"):
        check_config(_section(user_data=[str(nm)]))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "demo.yaml").write_text("n_models: 2\ntask_groups: [{properties: [tg]}]\n")
    with pytest.raises(
        ValueError, match=r"demo.yaml.task_groups: properties \[.*\] are in no group"
    ):
        check_config(with_defaults("viscosity", {"presets_dir": str(bad)}))


def test_checks_import_no_torch():
    import subprocess
    import sys

    code = "import sys; import vitriflow.surrogates.viscosity.checks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "model.pt"
    ViscositySurrogate(max_epochs=3, **SMALL).fit(_synthetic_table()).save(path)
    return path


@pytest.mark.parametrize("damage", ["truncate", "garble", "empty"])
def test_damaged_model_file_is_one_line_naming_it(saved_model, tmp_path, capsys, damage):
    from vitriflow import cli

    data = saved_model.read_bytes()
    bad = tmp_path / "model.pt"
    bad.write_bytes(
        {"truncate": data[: len(data) // 2], "garble": data[:200] + b"x" * 500, "empty": b""}[
            damage
        ]
    )
    with pytest.raises(ValueError, match=f"{bad}: not a readable vitriflow viscosity model"):
        ViscositySurrogate.load(bad)
    with pytest.raises(SystemExit) as exc:
        cli.main(
            ["viscosity", "predict", "--model", str(bad), "--composition", "SiO2=100", "-T", "1500"]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and str(bad) in err[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--composition", "SiO2=70,Na2O=20"],
            "--composition/--label[0] (SiO2=70,Na2O=20): oxide amounts sum to 90; expected 1",
        ),
        (
            ["--composition", "SiO2=75,Na2O=25", "--label", "a", "--label", "b"],
            "--label: 2 labels for 1 --composition(s); expected at most one --label per "
            "--composition",
        ),
    ],
)
def test_cli_refuses_odd_sums_and_extra_labels(saved_model, capsys, args, message):
    from vitriflow import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["viscosity", "predict", "--model", str(saved_model), "-T", "1500", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and message in err[0]
    # fractions summing to 1 and mol% summing to 100 give the same melt
    assert (
        cli.main(
            [
                "viscosity",
                "predict",
                "--model",
                str(saved_model),
                "-T",
                "1500",
                "--composition",
                "SiO2=0.75,Na2O=0.25",
                "--composition",
                "SiO2=75,Na2O=25",
                "--label",
                "fractions",
                "--label",
                "percent",
                "--all-columns",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    a, b = (np.array(line.split()[1:], dtype=float) for line in out[1:3])
    np.testing.assert_allclose(a, b, rtol=1e-3)


def test_grouped_folds_never_split_a_composition_cluster():
    from scipy.spatial.distance import cdist

    from vitriflow.surrogates.viscosity.folds import cluster_folds, composition_clusters, melt_folds

    rng = np.random.default_rng(1)
    base = rng.dirichlet(np.ones(6), 120)
    # near-duplicates: a twin 0.5 mol% away and a chain of three steps of 1.5 mol%
    twins = base[:30] + np.array([0.005, -0.005, 0, 0, 0, 0])
    step = np.array([0.015, -0.015, 0, 0, 0, 0])
    chain = np.concatenate([base[30:40] + k * step for k in (1, 2, 3)])
    x = np.clip(np.concatenate([base, twins, chain]), 0, None)
    x /= x.sum(axis=1, keepdims=True)
    labels = composition_clusters(x, radius_mol=2.0)
    close = 50 * cdist(x, x, metric="cityblock") <= 2.0  # mol% that must change
    assert (labels[:, None] == labels[None, :])[close].all()
    assert labels[0] == labels[120] and labels[30] == labels[150] == labels[160] == labels[170]
    folds = cluster_folds(labels, 5, seed=3)
    for c in np.unique(labels):  # a cluster never spans two folds
        assert len(set(folds[labels == c])) == 1
    assert (folds[:, None] == folds[None, :])[close].all()
    assert np.bincount(folds).max() - np.bincount(folds).min() <= np.bincount(labels).max()
    np.testing.assert_array_equal(folds, cluster_folds(labels, 5, seed=3))  # deterministic
    # rows of one melt (any property) share a fold; no two folds hold melts within 2 mol%
    table = pd.DataFrame(np.repeat(x, 2, axis=0), columns=list(OXIDES))
    f = melt_folds(table, 4, radius_mol=2.0)
    assert (f[::2] == f[1::2]).all()
    far = 50 * cdist(x, x, metric="cityblock")[f[::2][:, None] != f[::2][None, :]]
    assert far.min() > 2.0
    # a chained cluster bigger than one fold's share is cut into balls of the radius
    line = np.array([[0.6 + 0.01 * k, 0.4 - 0.01 * k, 0, 0, 0, 0] for k in range(30)])
    cut = composition_clusters(line, radius_mol=2.0, max_size=10)
    assert len(set(composition_clusters(line, radius_mol=2.0))) == 1 and len(set(cut)) > 3


def test_out_of_range_melts_are_flagged_and_their_bias_reported_apart():
    from vitriflow.surrogates.viscosity.evaluate import bias_table
    from vitriflow.surrogates.viscosity.folds import inside_range

    training = pd.DataFrame([[97.5, 0, 2.5, 0, 0, 0], [70, 10, 20, 0, 0, 0], [60, 5, 15, 10, 5, 5]],
                            columns=list(OXIDES))
    held = pd.DataFrame([[100.0, 0, 0, 0, 0, 0], [75, 5, 20, 0, 0, 0], [65, 5, 10, 10, 5, 5],
                         [70, 0, 10, 0, 20, 0]], columns=list(OXIDES))
    # pure silica lies beyond the training's 97.5 % SiO2 (and below its Na2O minimum); the last
    # melt has more MgO than any training melt
    np.testing.assert_array_equal(inside_range(held, training), [False, True, True, False])
    pred = held.assign(property="tg", equation="tg", y_true=1000.0,
                       y_pred=[600.0, 1010.0, 990.0, 1000.0],
                       inside_range=inside_range(held, training))
    row = bias_table(pred, n_boot=50).iloc[0]
    assert row["bias"] == pytest.approx(-100.0)
    assert row["bias inside range"] == pytest.approx(0.0) and row["n inside range"] == 2


def test_noise_model_distance_term_and_quantile_scale():
    rng = np.random.default_rng(0)
    s, d = rng.uniform(0.01, 0.3, 20000), rng.uniform(0.0, 12.0, 20000)
    r = rng.standard_t(4, 20000) * np.sqrt((1.5 * s) ** 2 + 0.1**2 + (0.04 * d) ** 2)
    m = cal.fit_noise_model(r, s, d, level=0.95)
    assert m["c"] > 0.02 and m["scale"] > 0
    sigma = cal.predictive_std(s, m, d)
    assert cal.coverage(r, sigma, 0.95) == pytest.approx(0.95, abs=0.002)
    far = d > 8  # the distance term keeps the far rows covered, not only the average
    assert cal.coverage(r[far], sigma[far], 0.95) > 0.93
    plain = cal.fit_noise_model(r, s)  # the form the GNN uses is unchanged
    assert set(plain) == {"a", "b", "n"}
    np.testing.assert_array_equal(cal.predictive_std(s, plain, d), cal.predictive_std(s, plain))


def test_quantile_scale_is_the_split_conformal_rank():
    """The scale puts the ceil((n + 1) 0.95)-th smallest |residual| / sigma on the interval's
    edge: with 19 rows that is the largest, with 39 the second largest (the plain empirical
    quantile would take a lower rank and under-cover a new row)."""
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    for n, rank in [(19, 19), (39, 38), (141, 135)]:
        s, r = rng.uniform(0.05, 0.2, n), rng.standard_t(3, n) * 0.3
        m = cal.fit_noise_model(r, s, level=0.95)
        z = np.sort(np.abs(r) / cal.predictive_std(s, {**m, "scale": 1.0}))
        assert m["scale"] * norm.ppf(0.975) == pytest.approx(z[rank - 1], rel=1e-12)
        assert m["scale"] * norm.ppf(0.975) > np.quantile(z, 0.95)


def test_far_rows_get_their_own_never_narrower_conformal_scale():
    """Errors that step up beyond 5 mol% (which the linear distance term fits poorly): the far
    rows get a wider factor that covers them; the near rows keep the plain model's sigma."""
    rng = np.random.default_rng(2)
    n = 4000
    s, d = rng.uniform(0.05, 0.2, n), rng.uniform(2.0, 8.0, n)
    r = rng.standard_t(4, n) * np.sqrt((1.5 * s) ** 2 + 0.1**2) * np.where(d > 5, 2.5, 1.0)
    one = cal.fit_noise_model(r, s, d, level=0.95)
    m = cal.fit_noise_model(r, s, d, level=0.95, far=5.0)
    assert "scale_far" not in one and m["far"] == 5.0 and m["scale_far"] > m["scale"]
    near, far = d <= 5, d > 5
    assert cal.coverage(r[far], cal.predictive_std(s, one, d)[far], 0.95) < 0.93
    sigma = cal.predictive_std(s, m, d)
    assert cal.coverage(r[far], sigma[far], 0.95) >= 0.945
    np.testing.assert_array_equal(sigma[near], cal.predictive_std(s, one, d)[near])
    # a row without a distance is treated as near; too few far rows: one factor
    nan_d = cal.predictive_std(s[:3], m, np.full(3, np.nan))
    np.testing.assert_array_equal(nan_d, cal.predictive_std(s[:3], m, np.zeros(3)))
    few = np.where(np.arange(n) < cal.MIN_ROWS - 1, 6.0, 3.0)
    assert "scale_far" not in cal.fit_noise_model(r, s, few, level=0.95, far=5.0)
    # never narrower: far rows that err less than the near ones keep the common factor
    calm = cal.fit_noise_model(r * np.where(d > 5, 0.2, 1.0), s, d, level=0.95, far=5.0)
    assert calm["scale_far"] == calm["scale"]
    assert cal.uses_distance(m) and not cal.uses_distance({"a": 1.0, "b": 0.1})


def test_calibration_uses_out_of_fold_predictions(tmp_path):
    from vitriflow.surrogates.viscosity.evaluate import cross_fitted_std

    t = _synthetic_table(n_comp=60)
    est = ViscositySurrogate(
        max_epochs=20, calibration="oof", calibration_folds=4, calibration_members=2, **SMALL
    ).fit(t, checkpoint_dir=tmp_path)
    oof = est.oof_
    dev = t[t["split"] != "test"]
    # every train + valid row predicted exactly once, by a fold model that never saw its melt
    assert sorted(oof["row_id"].unique()) == sorted(dev["row_id"])
    assert len(oof) == len(dev) + 4 * (dev["property"] == "viscosity").sum()
    assert (oof["nearest_mol"] > 2.0).all() and oof["fold"].nunique() == 4
    assert not oof["row_id"].isin(t.loc[t["split"] == "test", "row_id"]).any()
    # the noise models are those of the out-of-fold residuals, spreads and distances
    v = oof[(oof["property"] == "viscosity") & (oof["equation"] == "fv")]
    want = cal.fit_noise_model(v["y_pred"] - v["y_true"], v["y_spread"], v["nearest_mol"], 0.95,
                               far=DOMAIN_WARN_MOL)
    assert est.noise_models()["viscosity:fv"] == pytest.approx(want)
    assert est.noise_models()["viscosity:fv"]["n"] == len(v) > 36  # not the 36 valid rows
    assert len(list((tmp_path / "oof").glob("fold*/candidate*.pt"))) == 8  # 4 folds x 2 nets
    test = est.predict_table(t[t["split"] == "test"])
    tv = test[test["equation"] == "fv"]
    np.testing.assert_allclose(
        tv["y_std"],
        cal.predictive_std(tv["y_spread"].to_numpy(), want, tv["nearest_mol"].to_numpy()),
        rtol=1e-6,
    )
    X = t.loc[t["split"] == "test", list(OXIDES)].iloc[:3]
    p = est.predict(X, T=1300.0)
    # sigma grows with the distance: at least the floor and distance terms of the noise model
    floor = cal.predictive_std(np.zeros(len(p)), want, p["viscosity_nearest_mol"].to_numpy())
    assert (p["viscosity_fv_std"].to_numpy() >= floor * (1 - 1e-6)).all()
    cf = cross_fitted_std(oof)
    assert np.isfinite(cf).all() and (cf > 0).all()
    est.save(tmp_path / "m.pt")
    pd.testing.assert_frame_equal(
        p, ViscositySurrogate.load(tmp_path / "m.pt").predict(X, T=1300.0)
    )


def test_density_prior_starts_at_the_partial_molar_volume_model(tmp_path):
    from vitriflow import glass_density as gd
    from vitriflow.surrogates.viscosity.density import fit_prior, prior_density, prior_volume

    x = oxide_matrix(
        np.array([[75.0, 0, 25, 0, 0, 0], [100.0, 0, 0, 0, 0, 0], [60.0, 10, 15, 5, 5, 5]])
    )
    shipped = dict(gd.SHIPPED_COEFFICIENTS)
    np.testing.assert_allclose(
        prior_volume(shipped, x)[:, 0], gd.predict_molar_volume(x), rtol=1e-6
    )
    torch.manual_seed(0)
    net = MeltNet(39, 16, 2, 0.0, density_prior=True).eval()
    feats = torch.tensor(descriptors(x), dtype=torch.float32)
    vp = torch.from_numpy(prior_volume(shipped, x))
    with torch.no_grad():
        p = net(feats, torch.tensor(x, dtype=torch.float32), vp)
    # an untrained network (head weights ~0.01) leaves the prior's density within 1 %
    np.testing.assert_allclose(p["density"].numpy()[:, 0], gd.predict(x), rtol=0.01)
    with pytest.raises(ValueError, match="no prior volume"):
        net(feats, torch.tensor(x, dtype=torch.float32))
    # refitted on the training densities it is given, not the shipped fit
    xs = np.random.default_rng(2).dirichlet([8, 2, 2, 2, 1, 1], 80)
    dens = pd.DataFrame(xs, columns=list(OXIDES)).assign(
        property="density", split="train", value=1.03 * gd.predict(xs), T_K=np.nan,
        wavelength_um=np.nan, row_id=np.arange(80) + 10_000)
    coef = fit_prior(dens)
    assert coef != shipped and coef["V_SiO2"] == pytest.approx(shipped["V_SiO2"])
    err = prior_density(coef, xs) - dens["value"]
    assert np.sqrt(np.mean(err**2)) < 0.01  # the 3 % denser glasses, pinned silica aside
    assert fit_prior(dens[dens["value"] < 0]) == shipped  # nothing to fit on
    t = pd.concat([_synthetic_table(), dens], ignore_index=True)
    est = ViscositySurrogate(max_epochs=10, density_prior="pmv", **SMALL).fit(t)
    assert est.density_prior_ == pytest.approx(fit_prior(t[t["split"] == "train"]))
    est.save(tmp_path / "m.pt")
    back = ViscositySurrogate.load(tmp_path / "m.pt")
    X = t.loc[:5, list(OXIDES)]
    pd.testing.assert_frame_equal(est.predict(X), back.predict(X))


def test_bias_and_coverage_tables():
    from vitriflow.surrogates.viscosity.evaluate import bias_table, coverage_table

    n = 40
    base = pd.DataFrame(
        {
            "row_id": np.arange(n),
            "property": "tg",
            "equation": "",
            "split": "test",
            "y_true": 1000.0,
            "y_std": 10.0,
            "nearest_mol": np.linspace(0, 10, n),
        }
    )
    base[list(OXIDES)] = 0.0
    base["sio2"] = 0.5 + np.arange(n) / (2.0 * n)
    base["k2o"] = np.where(np.arange(n) < 10, 1.0 - base["sio2"], 0.0)
    base["na2o"] = 1.0 - base["sio2"] - base["k2o"]
    err = np.where(np.arange(n) < 10, -30.0, 5.0)  # K2O glasses 30 K low
    pred = base.assign(y_pred=1000.0 + err)
    row = bias_table(pred, "test").set_index("target").loc["tg"]
    assert row["bias"] == pytest.approx(err.mean()) and row["n_melts"] == n
    assert row["bias_ci_low"] < row["bias"] < row["bias_ci_high"]
    assert row["bias K2O-bearing"] == pytest.approx(-30.0) and row["n K2O-bearing"] == 10
    far = pred["nearest_mol"] > 5
    assert row["bias >5 mol%"] == pytest.approx(err[far].mean())
    assert row["rmse >5 mol%"] == pytest.approx(np.sqrt(np.mean(err[far] ** 2)))
    assert row["bias <=2 mol%"] == pytest.approx(-30.0)  # the K2O glasses are the nearest
    cover = coverage_table(pred, "test").set_index("target").loc["tg"]
    assert cover["cover"] == pytest.approx(30 / 40)  # |30| > 1.96 * 10
    assert cover["n <=2 mol%"] + cover["n 2-5 mol%"] + cover["n >5 mol%"] == n


def test_shipped_configs_pass_the_start_up_check(monkeypatch):
    """config/config.yaml and config/viscosity_full.yaml through load_config with this stage's
    check registered, as common.smk runs it."""
    from vitriflow import config as vconfig

    monkeypatch.chdir(REPO)
    monkeypatch.setitem(vconfig.STAGE_CHECKS, "viscosity",
                        "vitriflow.surrogates.viscosity.checks:check_config")
    for name, mode in (("config.yaml", "demo"), ("viscosity_full.yaml", "full")):
        cfg = yaml.safe_load((REPO / "config" / name).read_text())
        settings = vconfig.load_config(cfg)
        assert settings.derived["viscosity"] == {
            "preset": str(REPO / "config" / "viscosity" / f"{mode}.yaml")}
        assert settings.section("viscosity")["mode"] == mode
    bad = yaml.safe_load((REPO / "config" / "viscosity_full.yaml").read_text())
    bad["viscosity"]["model"] = {"task_groups": [{"properties": ["viscositty"]}]}
    with pytest.raises(vconfig.ConfigError, match=r"viscosity.model.task_groups\[0\].properties"):
        vconfig.load_config(bad)


def test_screening_overrides_reach_only_the_named_task_groups():
    from vitriflow.surrogates.viscosity import load_preset, screening_params

    preset = load_preset("config/viscosity/full.yaml")
    params = screening_params(preset, ['dropout=0.3'], 4, 2, ['features="oxides"'], ["tg"])
    groups = params["task_groups"]
    assert params["dropout"] == 0.3 and all(g["n_models"] == 4 for g in groups)
    assert [g.get("features") for g in groups] == ["oxides", None, "oxides", None]
    assert preset["task_groups"][0]["features"] == "charge_balance"  # the preset is untouched
