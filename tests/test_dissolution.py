"""Dissolution surrogates: constraint counting, descriptors, validation, protocols, prediction,
start-up checks of the section and its table, the command line and the report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vitriflow import cli
from vitriflow.config import ConfigError, with_defaults
from vitriflow.surrogates import dissolution as D
from vitriflow.surrogates.dissolution import evaluate as E
from vitriflow.surrogates.dissolution import selection
from vitriflow.surrogates.dissolution.topology import (
    TopologyError,
    closed_form_nas,
    count_constraints,
)

SECTION = with_defaults("dissolution", {})
CHECKS = SECTION["checks"]
BOTH_PH = ("initial", "at_time_t")

# the run settings a stage check sees: no data mirror, no downloads (tests need no network)
RUN = SimpleNamespace(
    config={"data": {"cache_dir": "resources", "mirror": None, "download": False}}, systems={})


def section(**kw):
    """The defaulted dissolution section with ``kw`` set (as a job receives it)."""
    return with_defaults("dissolution", kw)


def validate(df, source="table", ph_measures=BOTH_PH):
    return D.validate_table(df, source, CHECKS, ph_measures)


def fit_cv(frame, spec, max_degree=5, cv_folds=10, alphas=None, cache=None):
    return D.fit_with_cv(frame, spec, max_degree, cv_folds, alphas, cache)


def grouped(frame, specs, **kw):
    args = {"n_splits": 20, "seed": 0, "test_fraction": 0.3, "max_degree": 5, "cv_folds": 10,
            "ph_measure": "initial", "alphas": None, **kw}
    return D.evaluate_grouped(frame, specs, **args)


def nas(x, y):
    return {"Na2O": x, "Al2O3": y, "SiO2": 1 - x - y}


# ----------------------------------------------------------------------------- topology
def test_closed_forms_silica_albite_nepheline():
    assert count_constraints({"SiO2": 1}).n_c == pytest.approx(11 / 3)
    assert count_constraints(nas(0.125, 0.125)).n_c == pytest.approx(3.25)  # albite 9.75/3
    assert count_constraints(nas(0.25, 0.25)).n_c == pytest.approx(8.5 / 3)  # nepheline
    assert count_constraints({"GeO2": 1}).n_c == pytest.approx(11 / 3)


@pytest.mark.parametrize("x,y", [(0.25, 0.0), (0.25, 0.05), (0.25, 0.15), (1 / 6, 1 / 6),
                                 (0.3, 0.1)])
def test_species_rules_reproduce_eqs_5_2_to_5_6(x, y):
    c = count_constraints(nas(x, y)).as_dict()
    for key, value in closed_form_nas(x, y).items():
        assert c[key] == pytest.approx(value), key
    assert c["n_c"] == pytest.approx(c["BS"] + c["BB"])
    assert c["f_NBO"] == pytest.approx((2 * x - 2 * y) / (2 - x + y))


def test_scale_free_and_calcium_counts_like_sodium():
    assert count_constraints({"Na2O": 25, "Al2O3": 10, "SiO2": 65}).n_c == pytest.approx(
        closed_form_nas(0.25, 0.10)["n_c"])
    # one CaO compensates two Al like one Na2O does
    assert count_constraints({"CaO": 25, "Al2O3": 10, "SiO2": 65}).n_c == pytest.approx(
        count_constraints({"Na2O": 25, "Al2O3": 10, "SiO2": 65}).n_c)


@pytest.mark.parametrize("comp,msg", [
    ({"B2O3": 20, "SiO2": 80}, "unsupported oxide"),
    ({"Na2O": 10, "Al2O3": 20, "SiO2": 70}, "peraluminous"),
    ({"Na2O": 80, "SiO2": 20}, "non-bridging"),
    ({"Na2O": 100}, "no network former"),
    ({"SiO2": -1, "Na2O": 2}, "negative"),
])
def test_refusals_are_one_line(comp, msg):
    with pytest.raises(TopologyError, match=msg) as err:
        count_constraints(comp)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- data
def test_ph_branches_edges():
    acid, base = D.ph_branches([1.0, 7.0, 12.5])
    assert acid.tolist() == [6.0, 0.0, 0.0]
    assert base.tolist() == [0.0, 0.0, 5.5]


def _toy_table(n_glass=4, phs=(1.0, 4.0, 7.0, 10.0, 12.0), reps=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_glass):
        y = 5.0 * k
        for ph in phs:
            for _ in range(reps):
                nc = closed_form_nas(0.25, y / 100)["n_c"]
                rate = -12 - 2 * (nc - 3) + 0.2 * abs(ph - 7) - 0.1 * ph + rng.normal(0, 0.05)
                rows.append({"Na2O_mol_pct": 25.0, "Al2O3_mol_pct": y, "SiO2_mol_pct": 75 - y,
                             "pH_initial": ph, "pH_at_time_t": ph + rng.normal(0, 0.05),
                             D.RATE_COLUMN: rate})
    return pd.DataFrame(rows)


def _write(df, path):
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d.drop(columns="pH_initial"), "missing column 'pH_initial'"),
    (lambda d: d.rename(columns={D.RATE_COLUMN: "rate"}), "missing column"),
    (lambda d: d.assign(SiO2_mol_pct=d.SiO2_mol_pct + 5), "sum to"),
    (lambda d: d.assign(pH_initial=d.pH_initial + 10), "expected pH in"),
    (lambda d: d.assign(**{D.RATE_COLUMN: 10 ** d[D.RATE_COLUMN]}), "expected log10"),
    (lambda d: d.assign(B2O3_mol_pct=1.0, SiO2_mol_pct=d.SiO2_mol_pct - 1), "not supported"),
    (lambda d: d.rename(columns=lambda c: c.replace("_mol_pct", "")), "no oxide columns"),
    (lambda d: d.assign(pH_initial=["x"] * len(d)), "not a number"),
])
def test_schema_validation_errors(mutate, msg):
    with pytest.raises(D.DissolutionDataError, match=msg) as err:
        validate(mutate(_toy_table()), "toy.csv")
    assert "toy.csv" in str(err.value) and "\n" not in str(err.value)


def test_public_spreadsheet_reads_like_the_csv(shared_data, tmp_path):
    folder = shared_data / "dissolution"
    csv = D.load_table(folder / "hamilton_NAS_dissolution.csv", SECTION)
    xlsx = D.load_table(folder / "hamilton_NAS_dissolution_m3rg.xlsx", SECTION)
    pd.testing.assert_frame_equal(xlsx, csv)  # public headers renamed, values identical
    # a user's spreadsheet with the public headers, and one missing a column
    public = _toy_table().rename(columns={"Na2O_mol_pct": "Na2O", "Al2O3_mol_pct": "Al2O3",
                                          "SiO2_mol_pct": "SiO2", "pH_initial": " Initial pH",
                                          "pH_at_time_t": " pH at time t (Optional)",
                                          D.RATE_COLUMN: "QSiO2 (moles SiO2/cm2/s)"})
    public.to_excel(tmp_path / "Data.xlsx", index=False)
    assert len(D.load_table(tmp_path / "Data.xlsx", SECTION)) == len(public)
    public.drop(columns=" Initial pH").to_excel(tmp_path / "Data.xlsx", index=False)
    with pytest.raises(D.DissolutionDataError, match="Data.xlsx: missing column 'pH_initial'"):
        D.load_table(tmp_path / "Data.xlsx", SECTION)


@pytest.mark.parametrize("name, content, msg", [
    ("rates.csv", b"", "rates.csv is empty"),
    ("rates.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe\x00,,\"\n\x00\"",
     "rates.csv"),
    ("rates.parquet", b"PAR1 not really parquet", "rates.parquet is not a readable Parquet table"),
    ("rates.xlsx", b"PK\x03\x04 truncated zip", "rates.xlsx is not a readable Excel table"),
    ("rates.txt", b"a,b\n1,2\n", "suffix '.txt'; expected one of .csv, .parquet, .xlsx"),
])
def test_unreadable_files_are_one_line_naming_them(tmp_path, name, content, msg):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(D.DissolutionDataError, match=msg) as err:
        D.load_table(tmp_path / name, SECTION)
    assert str(tmp_path / name) in str(err.value) and "\n" not in str(err.value)


def test_grouped_split_never_leaks_and_is_deterministic():
    frame = D.describe(validate(_toy_table()))
    for seed in range(10):
        te = D.grouped_split(frame["group"], 0.3, seed)
        assert not set(frame.loc[te, "group"]) & set(frame.loc[~te, "group"])
        assert np.array_equal(te, D.grouped_split(frame["group"], 0.3, seed))
        # row order does not change which groups are held out
        perm = np.random.default_rng(seed).permutation(len(frame))
        te_p = D.grouped_split(frame["group"].to_numpy()[perm], 0.3, seed)
        assert set(frame["group"].to_numpy()[perm][te_p]) == set(frame.loc[te, "group"])
    for va in D.grouped_folds(frame["group"].to_numpy(), 10):
        assert not set(frame.loc[va, "group"]) & set(frame.loc[~va, "group"])


def test_rrmse_definition():
    assert D.rrmse([-11.0, -13.0], [-12.0, -12.0]) == pytest.approx(1 / 12)
    assert D.rmse([-11.0, -13.0], [-12.0, -12.0]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- models
def test_linear_model_recovers_a_linear_law_and_is_deterministic():
    frame = D.describe(validate(_toy_table()))
    frame["log10_rate"] = -12 + 0.5 * frame["pH_acid"] + 0.3 * frame["pH_base"] - 4 * frame["n_c"]
    spec = D.BUILTIN_MODELS["IV"]
    m1 = D.PolynomialRateModel(spec, 1).fit(frame)
    coef = m1.coefficients().set_index("term")
    assert coef.loc["pH_acid'", "coef_physical"] == pytest.approx(0.5)
    assert coef.loc["n_c'", "coef_physical"] == pytest.approx(-4)
    assert coef.loc["1", "coef_physical"] == pytest.approx(-12)
    deg, curve = D.select_degree(frame, spec, max_degree=3, n_folds=5, alphas=None)
    assert deg == 1 and len(curve) == 3
    s1 = grouped(frame, [spec], n_splits=2, max_degree=2, cv_folds=5)
    s2 = grouped(frame, [spec], n_splits=2, max_degree=2, cv_folds=5)
    pd.testing.assert_frame_equal(s1, s2)
    assert (s1["test_rmse"] < 1e-8).all()


def test_model_card_round_trip_and_predict_flags():
    frame = D.describe(validate(_toy_table()))
    model, curve = fit_cv(frame, D.BUILTIN_MODELS["III"], max_degree=2, cv_folds=5)
    card = D.model_card(model, frame, curve, "initial")
    again = D.PolynomialRateModel.from_dict(card)
    assert np.allclose(again.predict(frame), model.predict(frame))
    out = D.predict_inputs(card, [
        {"label": "in", "composition": {"Na2O": 25, "Al2O3": 5, "SiO2": 70}, "pH": [4.0]},
        {"label": "far", "composition": {"Na2O": 10, "Al2O3": 0, "SiO2": 90}, "pH": [13.5]},
        {"label": "bor", "composition": {"Na2O": 10, "B2O3": 10, "SiO2": 80}, "pH": [7.0]},
        {"label": "lower", "composition": {"na2o": 25, "AL2O3": 5, "sio2": 70}, "pH": [4.0]},
        {"label": "acid", "composition": {"Na2O": 25, "Al2O3": 5, "SiO2": 70}, "pH": [-3.0]},
    ])
    status = dict(zip(out["label"], out["status"], strict=True))
    assert status == {"in": "ok", "far": "out_of_range", "bor": "refused", "lower": "ok",
                      "acid": "refused"}
    by = out.set_index("label")
    assert "x_Na2O" in by.loc["far", "reason"]
    assert "pH -3.0 outside 0.0-14.0" in by.loc["acid", "reason"]
    assert by.loc["lower", "log10_rate"] == by.loc["in", "log10_rate"]  # names case-insensitive


def test_unknown_model_and_bad_query():
    with pytest.raises(D.DissolutionDataError, match="unknown model 'VI'"):
        D.resolve_models(["VI"])
    frame = D.describe(validate(_toy_table()))
    with pytest.raises(D.DissolutionDataError, match="extrapolation.train"):
        D.family_masks(frame, "Na2O ===", "Na2O > 0")
    # '=' assigns a column: its 2-D result as a mask would duplicate rows silently
    with pytest.raises(D.DissolutionDataError,
                       match="extrapolation.test: 'Na2O = 25' is not a condition"):
        D.family_masks(frame, "Na2O > 0", "Na2O = 25")
    one_ph = D.describe(validate(_toy_table(phs=(7.0,))))  # one glass at one pH: one group
    with pytest.raises(D.DissolutionDataError,
                       match="extrapolation.train: 'Al2O3 == 0' selects 1 .* group"):
        D.family_masks(one_ph, "Al2O3 == 0", "Al2O3 > 0")


def test_select_that_is_not_a_condition_is_refused(tmp_path):
    path = _write(_toy_table(), tmp_path / "rates.csv")
    assert len(D.load_table(path, section(select="Na2O > 0"))) <= len(_toy_table())
    with pytest.raises(D.DissolutionDataError,
                       match="dissolution.select: 'Na2O = 25' is not a condition"):
        D.load_table(path, section(select="Na2O = 25"))


def test_hamilton_table_groups_and_extrapolation_families(shared_data):
    df = D.load_table(shared_data / "dissolution" / "hamilton_NAS_dissolution.csv", SECTION)
    frame = D.describe(df)
    assert len(frame) == 299 and frame["glass"].nunique() == 8 and frame["group"].nunique() == 48
    tr, te = D.family_masks(frame, "Na2O == 25", "abs(Na2O - Al2O3) < 0.01")
    assert frame.loc[tr, "glass"].nunique() == 6
    assert sorted(frame.loc[te, "glass"].unique()) == ["12.5Na2O-12.5Al2O3-75SiO2",
                                                      "16.67Na2O-16.67Al2O3-66.67SiO2"]
    scores = grouped(frame, [D.BUILTIN_MODELS["III"]], n_splits=2, max_degree=3)
    # a linear-in-descriptors model on this data is far from the 1.1 % noise floor but sane
    assert ((scores["test_rrmse"] > 0.011) & (scores["test_rrmse"] < 0.2)).all()


def test_ridge_penalty_shrinks_and_is_chosen_inside_training_only(monkeypatch):
    frame = D.describe(validate(_toy_table(n_glass=5)))
    spec = D.BUILTIN_MODELS["IV-ridge"]
    X = frame[list(spec.features)].to_numpy()
    y = frame["log10_rate"].to_numpy()
    free = D.PolynomialRateModel(spec, 2).fit_arrays(X, y)
    stiff = D.PolynomialRateModel(spec, 2, alpha=10.0).fit_arrays(X, y)
    assert np.linalg.norm(stiff.coef[1:]) < 0.2 * np.linalg.norm(free.coef[1:])
    assert stiff.coef[0] == pytest.approx(y.mean(), abs=0.5)  # intercept is not shrunk to 0
    # the inner CV may only ever see rows of the outer training set
    seen = []
    real = selection.grouped_folds

    def spy(groups, n):
        seen.append(set(groups))
        return real(groups, n)

    monkeypatch.setattr(selection, "grouped_folds", spy)
    scores = grouped(frame, [spec], n_splits=3, max_degree=2, cv_folds=4, alphas=[1e-6, 1e-2])
    assert len(seen) == 3
    for k, groups in enumerate(seen):
        te = D.grouped_split(frame["group"].to_numpy(), 0.3, k)
        assert groups == set(frame.loc[~te, "group"]) and not groups & set(frame.loc[te, "group"])
    assert set(scores["alpha"]) <= {1e-6, 1e-2}
    m, curve = fit_cv(frame, spec, 2, 4, [1e-3])
    card = D.model_card(m, frame, curve, "initial")
    again = D.model_from_card(card)
    assert again.alpha == 1e-3 and np.allclose(again.predict(frame), m.predict(frame))


def test_anova_gp_fits_smooth_law_round_trips_and_refuses_bad_specs():
    frame = D.describe(validate(_toy_table(n_glass=4, reps=2)))
    spec = D.BUILTIN_MODELS["IV-GP"]
    model, curve = fit_cv(frame, spec)
    assert curve["train_rrmse"].iloc[0] < 0.01  # noise 0.05 log on ~ -13
    hp = model.hyperparameters()
    assert 0.01 < hp["noise_sd_log10"] < 0.2
    card = D.model_card(model, frame, curve, "initial")
    assert np.allclose(D.model_from_card(card).predict(frame), model.predict(frame))
    out = D.predict_inputs(card, [{"label": "in", "composition": {"Na2O": 25, "Al2O3": 5,
                                                                  "SiO2": 70}, "pH": [4.0]}])
    assert out["status"].tolist() == ["ok"] and -16 < out["log10_rate"].iloc[0] < -10
    with pytest.raises(D.DissolutionDataError, match="estimator 'gp' needs"):
        D.ModelSpec("bad", ("n_c", "pH"), estimator="gp")
    custom = section(custom_models={"X": {"features": ["pH"], "estimator": "ridge"}})
    assert D.resolve_models(["X"], custom["custom_models"])[0].estimator == "ridge"
    with pytest.raises(ConfigError, match="custom_models.X.estimator: 'svm' is not one of"):
        section(custom_models={"X": {"features": ["pH"], "estimator": "svm"}})


def _glass_offset_frame():
    """Toy data with one glass far off the smooth law: a random intercept should absorb it."""
    df = _toy_table(n_glass=5, reps=2)
    odd = (df["Al2O3_mol_pct"] == df["Al2O3_mol_pct"].unique()[2]).to_numpy()
    df.loc[odd, D.RATE_COLUMN] += 1.5
    return D.describe(validate(df)), odd


def test_mixed_model_random_effects_shrink_round_trip_and_fall_back_for_unseen_glasses():
    frame, odd = _glass_offset_frame()
    spec = D.BUILTIN_MODELS["IV-mixed"]
    free = D.MixedRateModel(spec, 1, alpha=1e-6, alpha_glass=1e-6).fit(frame)
    stiff = D.MixedRateModel(spec, 1, alpha=1e-6, alpha_glass=1e3).fit(frame)
    assert free.effect_terms == ("1", "pH_acid") and free.glass_coef.shape == (5, 2)
    assert np.abs(stiff.glass_coef).max() < 1e-2 < np.abs(free.glass_coef).max()

    def err(m):  # the odd glass: far better with its own intercept than by the population part
        return np.sqrt(np.mean((m.predict(frame[odd]) - frame.loc[odd, "log10_rate"]) ** 2))

    assert err(free) < 0.5 * err(stiff)
    # unseen composition: population part only, i.e. the design without random effects
    new = D.composition_descriptors({"Na2O": 20, "Al2O3": 7, "SiO2": 73}, [3.0, 10.0])
    assert np.allclose(free.predict(new), free._design(free._features(new)) @ free.coef)
    model, curve = fit_cv(frame, spec, 2, 4, [1e-4])
    assert curve.attrs["alpha_glass"] in D.DEFAULT_GLASS_ALPHAS
    card = D.model_card(model, frame, curve, "initial")
    again = D.model_from_card(card)
    assert isinstance(again, D.MixedRateModel)
    assert np.array_equal(again.predict(frame), model.predict(frame))
    assert model.coefficients()["term"].str.startswith("glass[").sum() == 10


def test_ensemble_is_the_mean_of_members_and_reuses_their_fits():
    frame, _ = _glass_offset_frame()
    a = D.BUILTIN_MODELS["IV-ridge"]
    custom = section(custom_models={"E": {"estimator": "ensemble",
                                          "members": ["IV-ridge", "IV-mixed"]}})["custom_models"]
    spec = D.resolve_models(["E"], custom)[0]
    assert spec.features == tuple(sorted(set(a.features)))
    cache: dict = {}
    ma, _ = fit_cv(frame, a, 2, 4, None, cache)
    ens, curve = fit_cv(frame, spec, 2, 4, None, cache)
    assert ens.members[0] is ma  # fitted once per training frame
    mb = ens.members[1]
    assert np.allclose(ens.predict(frame), (ma.predict(frame) + mb.predict(frame)) / 2)
    assert set(curve["member"]) == {"IV-ridge", "IV-mixed"}
    card = D.model_card(ens, frame, curve, "initial")
    assert np.array_equal(D.model_from_card(card).predict(frame), ens.predict(frame))
    fixed = D.fit_fixed_degree(frame, spec, 1, 4, None)
    assert [m.degree for m in fixed.members] == [1, 1]
    with pytest.raises(D.DissolutionDataError, match="'members'"):
        D.ModelSpec("bad", ("pH",), estimator="ridge", members=(a,))
    with pytest.raises(D.DissolutionDataError, match="'members'"):
        D.ModelSpec("bad", ("pH",), estimator="ensemble")


# ----------------------------------------------------------------------------- start-up checks
@pytest.mark.parametrize("cfg, msg", [
    ({"models": ["IV", "Foo"]}, "dissolution.models: unknown model 'Foo'"),
    ({"models": ["IV"], "predict": {"model": "V"}},
     "dissolution.predict.model: 'V' is not among dissolution.models"),
    ({"models": ["IV"], "ph_measures": ["initial"], "predict": {"ph_measure": "at_time_t"}},
     "dissolution.predict.ph_measure: 'at_time_t' is not among dissolution.ph_measures"),
    ({"models": ["IV"], "select": "Na2O = 25"},
     "dissolution.select: 'Na2O = 25' is not a condition"),
    ({"models": ["IV"], "select": "Na2O == 25 and pH_at_tim < 3"},
     "dissolution.select: cannot evaluate"),
    ({"models": ["IV"], "extrapolation": {"test": "Na2O ==="}},
     "dissolution.extrapolation.test: cannot evaluate"),
    ({"predict": {"inputs": [{"composition": {"Na2O": 20, "SiO2": 60}, "pH": [7]}]}},
     r"dissolution.predict.inputs\[0\].composition: amounts sum to 80; expected 1 .* or 100"),
    ({"predict": {"inputs": [{"composition": {"Na2O": 20, "Si02": 80}, "pH": [7]}]}},
     r"dissolution.predict.inputs\[0\].composition: 'Si02' has a count starting with 0"),
])
def test_config_check_needs_no_table(cfg, msg):
    with pytest.raises(ValueError, match=msg) as err:
        D.check_config(section(**cfg, table=None), RUN)
    assert "\n" not in str(err.value)


def test_config_check_accepts_the_documented_queries():
    cfg = section(models=["IV", "V"], ph_measures=["initial", "at_time_t"],
                  predict={"model": "V", "ph_measure": "at_time_t"},
                  select="Al2O3 > 0 and pH_at_time_t < 13",
                  extrapolation={"train": "Na2O == 25", "test": "abs(Na2O - Al2O3) < 0.01"},
                  table=None)
    assert D.check_config(cfg, RUN)["skip_reason"].startswith("no dissolution table configured")
    off = section(models=["IV"], extrapolation={"enabled": False, "test": "Na2O ==="}, table=None)
    D.check_config(off, RUN)
    assert D.check_config(section(enabled=False, models=["Foo"]), RUN)["skip_reason"] == (
        "dissolution.enabled is false in the config.")


def test_absent_data_folder_skips_and_a_typo_stops(tmp_path):
    out = D.check_config(section(table=str(tmp_path / "not_installed" / "rates.csv")), RUN)
    assert out["rows"] is None and "its folder" in out["skip_reason"]
    _write(_toy_table(), tmp_path / "rates.csv")
    with pytest.raises(ConfigError, match="dissolution.table: no file 'rate.csv' .* 'rates.csv'"):
        D.check_config(section(table=str(tmp_path / "rate.csv")), RUN)
    good = section(table=str(tmp_path / "rates.csv"), extrapolation={"train": "Al2O3 < 7",
                                                                    "test": "Al2O3 > 7"})
    assert D.check_config(good, RUN) == {"skip_reason": "", "table": str(tmp_path / "rates.csv"),
                                         "rows": len(_toy_table())}


def _bad_tables():
    t = _toy_table()
    nan_row = t.copy()
    nan_row.loc[4, "Al2O3_mol_pct"] = np.nan
    text = t.astype({D.RATE_COLUMN: object})
    text.loc[2, D.RATE_COLUMN] = "fast"
    pera = t.copy()
    pera.loc[:, ["Na2O_mol_pct", "Al2O3_mol_pct", "SiO2_mol_pct"]] = [10.0, 20.0, 70.0]
    return [
        ("missing column", t.drop(columns=D.RATE_COLUMN).to_csv(index=False).encode(),
         f"rates.csv: missing column '{D.RATE_COLUMN}'"),
        ("text in a number column", text.to_csv(index=False).encode(),
         f"rates.csv: column '{D.RATE_COLUMN}' row 4: 'fast' is not a number"),
        ("NaN row", nan_row.to_csv(index=False).encode(),
         "rates.csv: column 'Al2O3_mol_pct' row 6: empty, expected a number"),
        ("empty", b"", "rates.csv is empty"),
        ("header only", t.iloc[:0].to_csv(index=False).encode(),
         "rates.csv: the table has no rows"),
        ("binary garbage", bytes(range(256)) * 8, "rates.csv is not a readable CSV table"),
        ("outside the constraint rules", pera.to_csv(index=False).encode(),
         "rates.csv: 10Na2O-20Al2O3-70SiO2: peraluminous"),
    ]


@pytest.mark.parametrize("what, content, msg", _bad_tables(), ids=[c[0] for c in _bad_tables()])
def test_the_table_is_checked_at_start_in_one_line(tmp_path, what, content, msg):
    path = tmp_path / "rates.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        D.check_config(section(table=str(path)), RUN)
    text = str(err.value)
    assert text.startswith(f"dissolution.table: {path}") and msg in text and "\n" not in text


def test_a_select_leaving_one_training_group_is_refused_at_start(tmp_path):
    path = _write(_toy_table(), tmp_path / "rates.csv")
    cfg = section(table=str(path), models=["IV"], ph_measures=["initial"],
                  extrapolation={"enabled": False}, select="Al2O3 == 0 and pH_initial < 5")
    with pytest.raises(ValueError, match="dissolution.select or lower dissolution.test_fraction"):
        D.check_config(cfg, RUN)


# ----------------------------------------------------------------------------- evaluation
def test_table_without_ph_at_time_t_is_refused_before_any_fit(tmp_path, monkeypatch):
    path = _write(_toy_table().drop(columns="pH_at_time_t"), tmp_path / "rates.csv")
    monkeypatch.setattr(E, "evaluate_grouped", lambda *a, **k: pytest.fail("evaluated first"))
    with pytest.raises(D.DissolutionDataError) as err:
        D.run_evaluation(path, section(ph_measures=["initial", "at_time_t"]))
    assert str(err.value).startswith(
        f"{path}: missing column 'pH_at_time_t', needed by dissolution.ph_measures")


def test_ph_at_time_t_is_checked_only_when_used_and_empty_cells_are_named():
    bad = _toy_table()
    bad.loc[3, "pH_at_time_t"] = np.nan
    assert len(validate(bad, "toy.csv", ph_measures=["initial"])) == len(bad)
    with pytest.raises(D.DissolutionDataError,
                       match=r"toy.csv: column 'pH_at_time_t' row 5: empty, expected a number"):
        validate(bad, "toy.csv")


def test_header_only_table_and_duplicate_rows(tmp_path, caplog):
    path = _write(_toy_table().iloc[:0], tmp_path / "rates.csv")
    with pytest.raises(D.DissolutionDataError, match=f"{path}: the table has no rows"):
        D.load_table(path, SECTION)
    dup = _write(pd.concat([_toy_table(), _toy_table().iloc[:4]]), tmp_path / "dup.csv")
    with caplog.at_level("WARNING", logger="vitriflow.surrogates.dissolution"):
        assert len(D.load_table(dup, SECTION)) == len(_toy_table()) + 4  # kept, not dropped
    assert f"{dup}: 4 row(s) repeat an earlier row exactly" in caplog.text


def test_a_select_leaving_one_training_group_names_the_keys(tmp_path):
    path = _write(_toy_table(), tmp_path / "rates.csv")
    cfg = section(models=["IV"], ph_measures=["initial"], n_splits=2, max_degree=1,
                  extrapolation={"enabled": False}, select="Al2O3 == 0 and pH_initial < 5")
    with pytest.raises(D.DissolutionDataError,
                       match="dissolution.select or lower dissolution.test_fraction"):
        D.run_evaluation(path, cfg)


def test_few_groups_give_distinct_splits_and_the_summary_says_how_many(caplog):
    frame = D.describe(validate(_toy_table()))
    frame = frame[frame["glass"] == frame["glass"].iloc[0]].iloc[:9]  # 3 groups: 3 test sets
    assert frame["group"].nunique() == 3
    with caplog.at_level("WARNING", logger="vitriflow.surrogates.dissolution"):
        scores = grouped(frame, [D.BUILTIN_MODELS["II"]], n_splits=20, max_degree=1, cv_folds=2)
    assert "only 3 distinct test sets; using 3 splits" in caplog.text
    held_out = {tuple(sorted(D.grouped_split(frame["group"], 0.3, s).nonzero()[0]))
                for s in scores["split_seed"]}
    assert len(scores) == len(held_out) == 3
    summary = D.summary_table(scores, 3.76)
    assert summary["grouped_splits"].tolist() == [3]
    assert summary["grouped_degrees"].tolist() == ["1x3"]
    assert "| 3 | 1x3 |" in D.markdown_table(summary)


def test_many_groups_keep_the_seed_per_split():
    groups = np.repeat([f"g{i:02d}" for i in range(48)], 2)
    splits = D.distinct_grouped_splits(groups, 0.3, 0, 20)
    assert [s for s, _ in splits] == list(range(20))
    assert all(np.array_equal(te, D.grouped_split(groups, 0.3, s)) for s, te in splits)


def test_out_of_range_ph_refuses_only_its_row():
    frame = D.describe(validate(_toy_table()))
    model, curve = fit_cv(frame, D.BUILTIN_MODELS["IV"], max_degree=1, cv_folds=5)
    card = D.model_card(model, frame, curve, "initial")
    out = D.predict_inputs(card, [{"label": "g", "composition": {"Na2O": 25, "Al2O3": 5,
                                                                 "SiO2": 70}, "pH": [7.0, 15.0]}])
    assert out["status"].tolist() == ["ok", "refused"]
    assert out["reason"].iloc[1] == "pH 15.0 outside 0.0-14.0"
    assert np.isfinite(out["log10_rate"].iloc[0])


REPORT_CFG = {"models": ["I", "II", "III", "IV", "IV-a", "IV-b", "V"], "n_splits": 2,
              "max_degree": 2, "cv_folds": 3, "predict": {"model": "IV"}}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    path = _write(_toy_table(n_glass=6), tmp_path_factory.mktemp("d") / "rates.csv")
    cfg = section(**REPORT_CFG, extrapolation={"train": "Al2O3 < 12", "test": "Al2O3 > 12"})
    return path, cfg, D.run_evaluation(path, cfg)


def test_evaluation_writes_what_the_report_draws(evaluated):
    path, cfg, res = evaluated
    assert set(D.TABLES) <= set(res) and res["cards"]
    scores, parity = res["scores"], res["parity"]
    first = scores[(scores.protocol == "grouped_random") & (scores.split_seed == 0)]
    for r in first.itertuples():  # the parity points are the first split's scored predictions
        test = parity[(parity.model == r.model) & (parity.ph_measure == r.ph_measure)
                      & (parity.role == "test")]
        assert len(test) == r.n_test
        assert D.rrmse(test["predicted"], test["log10_rate"]) == pytest.approx(r.test_rrmse)
    # the rate-vs-pH curves are the cards' predictions
    card = res["cards"]["IV@initial"]
    frame = res["descriptors"][res["descriptors"].ph_measure == "initial"]
    glass = frame["glass"].iloc[0]
    comp = {c[2:]: frame[c].iloc[0] for c in frame if c.startswith("x_") and frame[c].iloc[0] > 0}
    c = res["ph_curves"]
    curve = c[(c.model == "IV") & (c.ph_measure == "initial") & (c.glass == glass)]
    expected = D.model_from_card(card).predict(D.composition_descriptors(comp, curve["pH"]))
    assert np.allclose(curve["predicted"], expected)
    ab = res["extrapolation_predictions"]
    assert set(ab["degree_rule"]) == {"cv", "1"} and set(ab["role"]) == {"train", "test"}


def test_report_only_reads_and_lays_many_models_out_in_rows(evaluated, tmp_path, monkeypatch):
    """Drawn from the tables read back from Parquet, with every fitting routine disabled; seven
    models' parity panels come as two rows, not one strip too small to read."""
    import base64
    import io
    import re

    from PIL import Image

    from vitriflow.io import read_table, write_table
    from vitriflow.surrogates.dissolution import models

    path, cfg, res = evaluated
    back = {}
    for name in D.TABLES:
        write_table(res[name], tmp_path / f"{name}.parquet", {})
        back[name] = read_table(tmp_path / f"{name}.parquet")[0]

    def no_fit(*a, **k):
        raise AssertionError("the report fitted a model")

    for owner, name in ((models.PolynomialRateModel, "fit"), (models.MixedRateModel, "fit"),
                        (models.AnovaGPRateModel, "fit"), (np, "polyfit"),
                        (np.linalg, "lstsq"), (models, "model_from_card")):
        monkeypatch.setattr(owner, name, no_fit)
    parts = D.report_parts(back, None, cfg, str(path))
    html = next(p for p in parts if "Parity, grouped split" in p)
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1))
    width, height = Image.open(io.BytesIO(png)).size
    assert height / width > 0.25, (width, height)  # a single row of 7 square panels is ~0.15
    assert any("A-&gt;B extrapolation" in p for p in parts)


# ----------------------------------------------------------------------------- command line
def _models_json(tmp_path):
    frame = D.describe(validate(_toy_table()))
    model, curve = fit_cv(frame, D.BUILTIN_MODELS["IV"], max_degree=1, cv_folds=5)
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"IV@initial": D.model_card(model, frame, curve,
                                                                      "initial")}}))
    return path


def _refused(capsys, argv):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1 and err[0].startswith("vitriflow: error: "), err
    return err[0]


def test_cli_descriptors(capsys):
    albite = "Na2O=12.5,Al2O3=12.5,SiO2=75"
    assert cli.main(["dissolution", "descriptors", "--composition", albite]) == 0
    assert '"n_c": 3.25' in capsys.readouterr().out
    assert cli.main(["dissolution", "descriptors", "--composition", "na2o=0.25,SIO2=0.75"]) == 0
    assert '"n_c"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli.main(["dissolution", "--help"])
    assert done.value.code == 0 and "{predict,descriptors}" in capsys.readouterr().out


def test_cli_reads_compositions_like_the_config_and_only_models_json(tmp_path, capsys):
    models = _models_json(tmp_path)
    base = ["dissolution", "predict", "--models", str(models), "--ph", "7"]
    for comp, msg in (("Na2O=20,NA2O=5,Al2O3=5,SiO2=70", "is given twice"),
                      ("Na2O=inf,Al2O3=5,SiO2=70", "expected a finite number"),
                      ("Na2O=20,SiO2=60", "amounts sum to 80; expected 1 (mole fractions) or "
                                          "100 (mol%)")):
        assert msg in _refused(capsys, [*base, "--composition", comp])
    assert cli.main([*base, "--composition", "na2o=25,AL2O3=5,SiO2=70"]) == 0
    assert " ok " in capsys.readouterr().out
    assert cli.main([*base, "--composition", "Na2O=10,Al2O3=20,SiO2=70"]) == 0  # a row, refused
    assert " refused " in capsys.readouterr().out
    (tmp_path / "config.yaml").write_text("dissolution:\n  models: [IV]\n")
    (tmp_path / "model.pt").write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02")
    (tmp_path / "other.json").write_text('{"provenance": {}, "models": {"a": 1}}')
    for name in ("config.yaml", "model.pt", "other.json", "absent.json"):
        line = _refused(capsys, ["dissolution", "predict", "--models", str(tmp_path / name),
                                 "--composition", "Na2O=25,SiO2=75", "--ph", "7"])
        assert line.startswith(f"vitriflow: error: {tmp_path / name}: ")
        assert "expected the models.json written by dissolution_evaluate" in line


@pytest.mark.parametrize("damage", [
    lambda c: c.pop("coef"),
    lambda c: c.update(coef="many"),
    lambda c: c.update(coef=[1.0, 2.0]),
    lambda c: c.update(training_range=[1, 2]),
    lambda c: c.update(estimator="gp"),
])
def test_cli_names_a_damaged_model_card(tmp_path, capsys, damage):
    models = _models_json(tmp_path)
    data = json.loads(models.read_text())
    damage(data["models"]["IV@initial"])
    models.write_text(json.dumps(data))
    line = _refused(capsys, ["dissolution", "predict", "--models", str(models),
                             "--composition", "Na2O=25,SiO2=75", "--ph", "7"])
    assert f"{models}: model card 'IV@initial' is damaged" in line


def test_cli_debug_shows_the_traceback(capsys):
    with pytest.raises(SystemExit):
        cli.main(["dissolution", "descriptors", "--composition", "Na2O=20,SiO2=60", "--debug"])
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("vitriflow: error: ")
