"""PCF surrogate: fingerprint, data assembly, models, splits, persistence, report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from vitriflow.io import read_csv, write_table
from vitriflow.surrogates.pcf import (
    ConvAutoencoder,
    PCFFingerprint,
    PCFPredictor,
    PCFSurrogate,
    build_dataset,
    curve_metrics,
    element_fractions,
    first_peak,
    grouped_split,
    train_and_evaluate,
    write_outputs,
)
from vitriflow.surrogates.pcf.models import curves_to_images, images_to_curves
from vitriflow.surrogates.pcf.synthetic import (
    doped_silicate_compositions,
    peaked_curve,
    synthetic_family,
)

R = np.arange(0.5, 6.0, 0.05)
SMALL_AE = {"channels": [8, 16, 16], "kernel_size": 5, "epochs": 60, "patience": 0,
            "batch_size": 16, "learning_rate": 3e-3}
SMALL_GRID = {"n_estimators": [10], "max_depth": [None], "max_features": [1.0],
              "min_samples_split": [2, 4]}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _family_files(tmp_path, compositions, name="syn", replicas=2, seed=0):
    comps, rdf = synthetic_family(compositions, R, replicas=replicas, seed=seed, system=name)
    c, r = tmp_path / f"{name}_comp.parquet", tmp_path / f"{name}_rdf.parquet"
    write_table(comps, c, {"stage": "test"})
    write_table(rdf, r, {"stage": "test"})
    return name, r, c


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcf")
    comps = doped_silicate_compositions(dopants=("BaO", "ZnO"), amounts=(0.02, 0.08, 0.14, 0.2),
                                        bases=({"SiO2": 1.0}, {"SiO2": 0.7, "Na2O": 0.3}))
    return build_dataset([_family_files(tmp, comps)])


# -- fingerprint -------------------------------------------------------------------------------
def test_fingerprint_round_trip_and_layout():
    fp = PCFFingerprint(("SiO2", "Na2O", "B2O3", "BaO"))
    assert fp.species == ("B", "Ba", "Na", "O", "Si")
    assert len(fp.pairs) == 15 and "O-Si" in fp.pairs and "Ba-Ba" in fp.pairs
    assert fp.n_features == 4 + 15 + 2 == len(fp.feature_names)
    glass = {"SiO2": 0.6, "Na2O": 0.2, "B2O3": 0.15, "BaO": 0.05}
    for pair in ("O-Si", "Ba-O", "B-Na"):
        vec = fp.encode(glass, pair)
        back, p = fp.decode(vec)
        assert p == pair
        assert back == pytest.approx(glass)
    vec = fp.encode(glass, "Ba-O")
    x = element_fractions(glass)
    assert vec[-2:] == pytest.approx([x["Ba"], x["O"]])
    assert vec[4:19].sum() == 1.0
    # element basis works the same way
    fe = PCFFingerprint(("Si", "O"), pair_fractions=False)
    assert fe.decode(fe.encode({"Si": 1 / 3, "O": 2 / 3}, "O-Si"))[1] == "O-Si"


@pytest.mark.parametrize(("fractions", "pair", "match"), [
    ({"SiO2": 0.9, "Li2O": 0.1}, "O-Si", "Li2O"),              # unknown component
    ({"SiO2": 0.9, "Na2O": 0.2}, "O-Si", "sum to 1.1"),         # does not sum to 1
    ({"SiO2": 1.1, "Na2O": -0.1}, "O-Si", "Na2O"),              # negative
    ({"SiO2": 1.0}, "Na-O", "absent from the glass"),           # species not in glass
    ({"SiO2": 1.0}, "O-Zr", "'Zr'"),                            # unknown species
    ({"SiO2": 1.0}, "Si-O", "must be written 'O-Si'"),          # non-canonical pair
    ({"SiO2": 1.0}, "OSi", "form 'A-B'"),
])
def test_fingerprint_refuses_bad_input(fractions, pair, match):
    fp = PCFFingerprint(("SiO2", "Na2O"))
    with pytest.raises(ValueError, match=match):
        fp.encode(fractions, pair)


def test_fingerprint_refuses_bad_components():
    with pytest.raises(ValueError, match="Xx9"):
        PCFFingerprint(("SiO2", "Xx9"))
    with pytest.raises(ValueError, match="duplicates"):
        PCFFingerprint(("SiO2", "SiO2"))


# -- data ----------------------------------------------------------------------------------------
def test_dataset_averages_replicas_and_keeps_spread(tmp_path):
    name, r, c = _family_files(tmp_path, [{"SiO2": 1.0}, {"SiO2": 0.8, "Na2O": 0.2}], replicas=3)
    ds = build_dataset([(name, r, c)])
    raw = pd.read_parquet(r)
    # silica has 3 pairs, the sodium silicate 6
    assert len(ds.y) == 9 and set(ds.meta["n_replicas"]) == {3}
    i = int(np.flatnonzero((ds.meta["composition_index"] == 1) & (ds.meta["pair"] == "Na-O"))[0])
    sub = raw[(raw["composition_index"] == 1) & (raw["pair"] == "Na-O")].pivot(
        index="replica", columns="r_A", values="g").to_numpy()
    assert np.allclose(ds.y[i], sub.mean(0)) and np.allclose(ds.y_std[i], sub.std(0))
    assert ds.y_std[i].max() > 0
    # smoothing is applied per replica before averaging: mean of smoothed == smoothed mean,
    # and the bin noise (replica spread) shrinks
    from vitriflow.surrogates.pcf.evaluate import smooth

    sm = build_dataset([(name, r, c)], smoothing_A=0.1)
    assert np.allclose(sm.y, smooth(R, ds.y, 0.1))
    assert (sm.y_std ** 2).mean() < 0.5 * (ds.y_std ** 2).mean()


def test_dataset_refuses_mismatched_grids_and_columns(tmp_path):
    a = _family_files(tmp_path, [{"SiO2": 1.0}], name="a")
    comps, rdf = synthetic_family([{"SiO2": 1.0}], R[::2], system="b")
    write_table(comps, tmp_path / "b_c.parquet", {})
    write_table(rdf, tmp_path / "b_r.parquet", {})
    with pytest.raises(ValueError, match="r-grid"):
        build_dataset([a, ("b", tmp_path / "b_r.parquet", tmp_path / "b_c.parquet")])
    write_table(rdf.drop(columns="pair"), tmp_path / "bad.parquet", {})
    with pytest.raises(ValueError, match=r"bad.parquet: missing columns \['pair'\]"):
        build_dataset([("b", tmp_path / "bad.parquet", tmp_path / "b_c.parquet")])
    with pytest.raises(ValueError, match=r"pcf.pairs \['Na-O'\] not found"):
        build_dataset([("b", tmp_path / "b_r.parquet", tmp_path / "b_c.parquet")], pairs=["Na-O"])
    write_table(comps.drop(columns=["oxide_SiO2"]), tmp_path / "el.parquet", {})
    with pytest.raises(ValueError, match="el.parquet: no 'oxide_\\*' columns"):
        build_dataset([("b", tmp_path / "b_r.parquet", tmp_path / "el.parquet")])
    assert build_dataset([("b", tmp_path / "b_r.parquet", tmp_path / "el.parquet")],
                         basis="element").components == ["O", "Si"]


def test_absent_species_pairs_are_dropped(tmp_path):
    comps, rdf = synthetic_family([{"SiO2": 0.8, "Na2O": 0.2}], R, system="s")
    comps2, _ = synthetic_family([{"SiO2": 1.0}], R, system="s")
    # composition 1 is pure silica but its rdf table (as an analysis of the whole system would)
    # still lists Na pairs: they must not become training curves
    rdf2 = rdf.assign(composition_index=1,
                      structure_id=rdf["structure_id"].str.replace("c0000", "c0001"))
    comps2 = comps2.assign(composition_index=1, oxide_Na2O=0.0, x_Na=0.0)
    write_table(pd.concat([comps, comps2]), tmp_path / "c.parquet", {})
    write_table(pd.concat([rdf, rdf2]), tmp_path / "r.parquet", {})
    ds = build_dataset([("s", tmp_path / "r.parquet", tmp_path / "c.parquet")])
    silica = ds.meta[ds.meta["composition_index"] == 1]
    assert sorted(silica["pair"]) == ["O-O", "O-Si", "Si-Si"]


# -- splits ------------------------------------------------------------------------------------
def test_grouped_split_never_leaks_a_composition(tmp_path):
    # the same glass in two systems must share a group
    comps = doped_silicate_compositions(dopants=("BaO",), amounts=(0.05, 0.1, 0.2))
    ds = build_dataset([_family_files(tmp_path, comps, "s1"),
                        _family_files(tmp_path, comps[:2], "s2")])
    assert ds.meta.groupby("group")["system"].nunique().max() == 2
    for seed in range(10):
        tr, te = grouped_split(ds.groups, 0.3, seed)
        assert len(tr) + len(te) == len(ds.y)
        assert not set(ds.groups[tr]) & set(ds.groups[te])
    with pytest.raises(ValueError, match="test_fraction"):
        grouped_split(ds.groups, 1.5, 0)


# -- models ----------------------------------------------------------------------------------
def test_autoencoder_reconstruction_improves_with_training(family):
    y = family.y / family.y.max()
    tr, te = grouped_split(family.groups, 0.25, 0)
    errs = []
    for epochs in (1, 60):
        ae = ConvAutoencoder(**{**SMALL_AE, "epochs": epochs},
                             random_state=0).fit(y[tr], family.groups[tr])
        z = ae.transform(y[te])
        assert z.shape == (len(te), 8)
        errs.append(float(((ae.inverse_transform(z) - y[te]) ** 2).mean()))
    assert errs[1] < 0.05 * errs[0], errs
    assert (len(ae.history_["train_mse"]) == 60
            and ae.history_["train_mse"][-1] < ae.history_["train_mse"][0])


def test_image_representation_round_trip_and_fit():
    y = np.stack([peaked_curve(R, r0, 3.0, 0.1) for r0 in np.linspace(1.5, 2.5, 12)]) / 4.0
    img = curves_to_images(y, 64)
    assert img.shape == (12, 1, 64, 64) and img.min() >= 0 and img.max() <= 1
    cols = np.stack([np.interp(np.linspace(0, len(R) - 1, 64), np.arange(len(R)), c) for c in y])
    assert np.allclose(img[:, 0].sum(axis=1) / 64, np.clip(cols, 0, 1), atol=1e-6)
    back = images_to_curves(img, len(R))
    assert np.abs(back - y).max() < 0.15  # only the 64-column resampling is lost
    ae = ConvAutoencoder(representation="image", channels=(8, 8, 8, 8, 8, 8), epochs=2,
                         patience=0).fit(y)
    assert (ae.transform(y).shape == (12, 8)
            and ae.inverse_transform(ae.transform(y)).shape == y.shape)


def test_fast_latent_prediction_matches_forest(family):
    fp = PCFFingerprint(tuple(family.components))
    X = family.features(fp)
    m = PCFSurrogate("pca", forest={"n_estimators": 7}).fit(X, family.y)
    assert np.allclose(m.predict_latent(X[:5]), m.forest_.predict(X[:5]))
    with pytest.raises(ValueError, match="expected"):
        m.predict_latent(X[:, :3])


def test_per_pair_forests_predict_each_pair_from_its_own_curves(family):
    fp = PCFFingerprint(tuple(family.components))
    X, pairs = family.features(fp), family.meta["pair"].to_numpy()
    block = (len(fp.components), len(fp.components) + len(fp.pairs))
    m = PCFSurrogate("direct", forest={"n_estimators": 5}, pair_block=block).fit(X, family.y)
    assert len(m.forests_) == len(set(pairs))
    for pair in set(pairs):  # every forest was fitted on its own pair's rows only
        rows = pairs == pair
        forest = m.forests_[fp.pairs.index(pair)]
        assert forest.n_features_in_ == X.shape[1]
        pred = m.predict(X[rows])
        lo, hi = family.y[rows].min(axis=0), family.y[rows].max(axis=0)
        assert np.all(pred >= lo - 1e-9) and np.all(pred <= hi + 1e-9)  # averages of its own curves
    unseen = X[:1].copy()
    unseen[:, block[0]:block[1]] = 0.0
    unseen[0, block[0] + [i for i, p in enumerate(fp.pairs) if p not in set(pairs)][0]] = 1.0
    with pytest.raises(ValueError, match="not in training"):
        m.predict(unseen)


def _fit_all(ds, seed):
    from vitriflow.config import with_defaults

    settings = with_defaults("pcf", {
        "seed": seed, "models": ["autoencoder", "pca", "direct"], "test_fraction": 0.25,
        "autoencoder": SMALL_AE, "forest": {"cv_folds": 3, "grid": SMALL_GRID}, "threads": 1})
    return train_and_evaluate(ds, settings), settings


@pytest.fixture(scope="module")
def trained(family):
    return _fit_all(family, seed=3)


def test_training_is_deterministic(family, trained):
    again, _ = _fit_all(family, seed=3)
    a, b = trained[0]["predictions"], again["predictions"]
    assert np.array_equal(a["g_pred"].to_numpy(), b["g_pred"].to_numpy())
    assert (trained[0]["training"]["autoencoder"]["history"]
            == again["training"]["autoencoder"]["history"])
    pd.testing.assert_frame_equal(trained[0]["metrics"], again["metrics"])  # no timing columns


def test_timings_live_in_the_provenance_record_and_reach_the_report(tmp_path, family, trained):
    from vitriflow.io import read_table
    from vitriflow.surrogates.pcf.report import build_section

    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    metrics, prov = read_table(out["metrics"])
    assert not {"train_s", "predict_ms_per_glass"} & set(metrics.columns)
    assert set(prov["timings"]) == {"autoencoder", "pca", "direct"}
    assert all(t["train_s"] > 0 and t["predict_ms_per_glass"] > 0 for t in prov["timings"].values())
    models = json.loads(open(out["training"]).read())["models"]
    assert all(not {"total_s", "reducer_s"} & set(e) and "mean_fit_time" not in e["cv"]
               for e in models.values())
    html_path = tmp_path / "80_pcf.html"
    build_section(html_path, read_table(out["dataset"])[0], read_table(out["predictions"])[0],
                  metrics, json.loads(open(out["training"]).read()), n_examples=4,
                  timings=prov["timings"])
    ms = prov["timings"][res["default_model"]]["predict_ms_per_glass"]
    html = html_path.read_text()
    assert f"partial PCFs {ms:.2f} ms" in html and "predict_ms_per_glass" in html


def test_evaluation_metrics_and_models_learn(family, trained):
    res = trained[0]
    m = res["metrics"]
    overall = m[m["pair"] == "all"].set_index("model")
    assert set(overall.index) == {"autoencoder", "pca", "direct"}
    # every model is much better than predicting the training mean curve
    test = res["split"]["test"]
    base = ((family.y[test] - family.y[res["split"]["train"]].mean(0)) ** 2).mean()
    assert (overall["mse"] < 0.3 * base).all(), overall["mse"]
    assert overall.loc["pca", "latent_r2"] > 0.5
    assert res["best_model"] == overall["mse"].idxmin()
    assert not set(family.groups[test]) & set(family.groups[res["split"]["train"]])


def _write_all(tmp_path, family, res, settings) -> dict[str, str]:
    out = {k: str(tmp_path / f"{k}.{ext}") for k, ext in
           [("dataset", "parquet"), ("predictions", "parquet"), ("metrics", "parquet"),
            ("training", "json"), ("model", "joblib")]}
    write_outputs(family, res, settings, ["syn"], out, {"stage": "test"})
    return out


def test_save_load_round_trip_identical(tmp_path, family, trained):
    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    pred = res["predictors"][res["default_model"]]
    loaded = PCFPredictor.load(out["model"])
    glass = {"SiO2": 0.62, "Na2O": 0.28, "ZnO": 0.1}
    p1, y1 = pred.predict(glass)
    p2, y2 = loaded.predict(glass)
    assert p1 == p2 == ["Na-Na", "Na-O", "Na-Si", "Na-Zn", "O-O", "O-Si", "O-Zn", "Si-Si", "Si-Zn",
                        "Zn-Zn"]
    assert np.array_equal(y1, y2) and y1.shape == (10, len(R))
    with pytest.raises(ValueError, match="not trained"):
        loaded.predict(glass, pairs=["B-O"])
    training = json.loads(open(out["training"]).read())
    assert training["default_model"] == res["default_model"]
    assert set(training["models"]["autoencoder"]) >= {"best_params", "cv", "history"}


def test_cli_predicts_the_curves_of_the_saved_model(tmp_path, family, trained, capsys):

    from vitriflow.cli import main

    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    # mol% in any case, normalised: the same glass as the estimator's fractions
    argv = ["pcf", "predict", "--model", out["model"], "--composition", "sio2=62,Na2O=28,ZnO=10",
            "--label", "NZS", "--pairs", "O-Si", "O-Zn", "--out", str(tmp_path / "g.csv")]
    assert main(argv) == 0
    curves = read_csv(tmp_path / "g.csv")[0]
    _, expect = res["predictors"][res["default_model"]].predict(
        {"SiO2": 0.62, "Na2O": 0.28, "ZnO": 0.1}, ["O-Si", "O-Zn"])
    assert (list(curves.groupby("pair").size()) == [len(R), len(R)]
            and set(curves["label"]) == {"NZS"})
    np.testing.assert_allclose(curves.loc[curves.pair == "O-Zn", "g"], expect[1], rtol=1e-5,
                               atol=1e-9)
    printed = capsys.readouterr().out
    assert "first_peak_r_A" in printed and "O-Zn" in printed
    for bad, message in ((["--composition", "SiO2=70,B2O3=30"],
                          "not <oxide>=<amount> with an oxide among"),
                         (["--composition", "SiO2=0"],
                          "amounts sum to 0; expected 100 (mol%) or 1"),
                         (["--composition", "SiO2=60,ZnO=20"], "amounts sum to 80; expected 100"),
                         (["--composition", "SiO2=100", "--label", "a", "--label", "b"],
                          "--label given 2 times for 1 --composition"),
                         (["--composition", "SiO2=100", "--pairs", "Na-O"],
                          "absent from the glass")):
        with pytest.raises(SystemExit):
            main(["pcf", "predict", "--model", out["model"], *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def _training_glass_nudged(family, res) -> dict[str, float]:
    """A training composition with 1 mol% moved from its largest component to the next one."""
    glass = family.fractions(int(res["split"]["train"][0]))
    big, nxt = sorted(glass, key=glass.get, reverse=True)[:2]
    return {**glass, big: glass[big] - 0.01, nxt: glass[nxt] + 0.01}


def _as_argument(glass: dict[str, float]) -> str:
    return ",".join(f"{c}={100 * v:.6f}" for c, v in glass.items())


def test_cli_composition_inside_the_training_glasses_gets_no_warning(tmp_path, family, trained,
                                                                     capsys):
    from vitriflow.cli import main

    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    glass = _training_glass_nudged(family, res)
    assert PCFPredictor.load(out["model"]).nearest_mol(glass) == pytest.approx(1.0)
    assert main(["pcf", "predict", "--model", out["model"], "--composition", _as_argument(glass),
                 "--label", "near"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    header, first = captured.out.splitlines()[:2]
    assert (header.split()[-1] == "nearest_mol" and first.split()[0] == "near"
            and first.split()[-1] == "1")


def test_cli_composition_far_from_the_training_glasses_gets_one_warning_line(tmp_path, family,
                                                                             trained, capsys):
    from vitriflow.cli import main

    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    # the family is SiO2 and SiO2 + 30 % Na2O with BaO or ZnO: pure Na2O is 70 mol% from all of it
    argv = ["pcf", "predict", "--model", out["model"], "--composition", "Na2O=100",
            "--label", "soda",
            "--composition", _as_argument(_training_glass_nudged(family, res)), "--label", "near",
            "--out", str(tmp_path / "g.csv")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: soda: outside the training data (mol% to "
                                               "the nearest training glass: 7"), err
    assert "beyond 5 mol% treat its predictions as extrapolations (docs/pcf.md" in err[0]
    # predictions are still made, printed and written for both glasses
    assert {"soda", "near"} <= {line.split()[0] for line in captured.out.splitlines()[1:]}
    assert set(read_csv(tmp_path / "g.csv")[0]["label"]) == {"soda", "near"}


def test_saved_model_keeps_its_training_glasses(tmp_path, family, trained):
    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    pred, loaded = res["predictors"][res["default_model"]], PCFPredictor.load(out["model"])
    train, test = res["split"]["train"], res["split"]["test"]
    comp = family.meta[[f"frac_{c}" for c in family.components]].to_numpy()
    np.testing.assert_array_equal(loaded.domain, np.unique(comp[train], axis=0))
    np.testing.assert_array_equal(loaded.domain, pred.domain)
    assert loaded.nearest_mol(family.fractions(int(train[-1]))) == 0.0
    # held-out glasses are off the domain; training.json records how far
    far = json.loads(open(out["training"]).read())["split"]["test_nearest_mol"]
    assert set(far) == set(family.groups[test]) and min(far.values()) > 0
    i = int(test[0])
    assert loaded.nearest_mol(family.fractions(i)) == pytest.approx(far[family.groups[i]])


def test_model_saved_without_a_domain_still_predicts_without_warning(tmp_path, family, trained,
                                                                     capsys):
    import copy

    import joblib

    from vitriflow.cli import main

    res, _ = trained
    old = copy.copy(res["predictors"][res["default_model"]])
    old.__dict__.pop("domain", None)  # pickled as a model written before the domain was kept
    joblib.dump(old, tmp_path / "old.joblib")
    loaded = PCFPredictor.load(tmp_path / "old.joblib")
    assert loaded.domain is None and loaded.nearest_mol({"Na2O": 1.0}) is None
    assert loaded.predict({"Na2O": 1.0})[1].shape == (3, len(R))
    assert main(["pcf", "predict", "--model", str(tmp_path / "old.joblib"),
                 "--composition", "Na2O=100"]) == 0
    captured = capsys.readouterr()
    assert (captured.err == "" and "first_peak_g" in captured.out
            and "nearest_mol" not in captured.out)


def test_report_section(tmp_path, family, trained):
    from vitriflow.io import read_table
    from vitriflow.surrogates.pcf.report import build_section

    res, settings = trained
    out = _write_all(tmp_path, family, res, settings)
    html_path = tmp_path / "80_pcf.html"
    build_section(html_path, read_table(out["dataset"])[0], read_table(out["predictions"])[0],
                  read_table(out["metrics"])[0], json.loads(open(out["training"]).read()),
                  n_examples=4)
    html = html_path.read_text()
    assert "the PCA baseline" in html and html.count("<img") >= 3 and "Targets" in html
    assert "mol% from the nearest training composition" in html


# -- metrics ------------------------------------------------------------------------------------
def test_first_peak_and_curve_metrics():
    r = np.arange(0.0, 5.0, 0.02)
    g = peaked_curve(r, 1.613, 8.0, 0.05)
    pos, h = first_peak(r, g)
    assert abs(pos - 1.613) < 0.004 and h > 5
    shifted = peaked_curve(r, 1.653, 8.0, 0.05)
    m = curve_metrics(r, np.stack([g, g]), np.stack([shifted, g]), ["O-Si", "O-O"])
    row = m.set_index("pair")
    assert row.loc["O-Si", "peak_dr_max_A"] == pytest.approx(0.04, abs=0.005)
    assert (row.loc["O-O", "mse"] == 0 and row.loc["O-Si", "cation_O"]
            and not row.loc["O-O", "cation_O"])
    assert row.loc["all", "n_curves"] == 2


def test_schema_defaults_and_refusals(repo_root):
    import jsonschema
    import yaml

    from vitriflow.config import with_defaults

    schema_path = repo_root / "src/vitriflow/schemas/pcf.schema.yaml"
    cfg = with_defaults("pcf", {"systems": ["nas"], "forest": {"grid": {"n_estimators": [5]}}})
    assert cfg["default_model"] == "auto" and cfg["autoencoder"]["epochs"] == 300
    assert (cfg["forest"]["grid"]["n_estimators"] == (5,)
            and cfg["forest"]["grid"]["max_depth"] == (None, 10))
    schema = yaml.safe_load(schema_path.read_text())
    for bad in ({"modle": "pca"}, {"models": ["gnn"]}, {"test_fraction": 1.0}, {"pairs": ["Si_O"]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_config_check_refuses_untrained_default_and_mixed_potentials():
    from types import SimpleNamespace

    from vitriflow.config import with_defaults
    from vitriflow.surrogates.pcf.checks import check_config

    def check_pcf_config(section, systems):
        return check_config(with_defaults("pcf", section), SimpleNamespace(systems=systems))

    systems = {"silica": SimpleNamespace(potential="teter"),
               "nas": SimpleNamespace(potential="teter"),
               "silica_7net": SimpleNamespace(potential="sevennet-0")}
    assert check_pcf_config({"systems": ["silica", "nas"]}, systems) == ["silica", "nas"]
    assert check_pcf_config({"systems": ["nas"], "models": ["pca"], "default_model": "auto"},
                            systems) == ["nas"]
    bad = [({"systems": ["nas"], "models": ["pca", "direct"], "default_model": "autoencoder"},
            r"^pcf\.default_model: 'autoencoder' is not among pcf\.models \['pca', 'direct'\]"),
           ({"systems": ["silica", "silica_7net"]},
            r"^pcf\.systems: the family mixes potentials .*sevennet-0"),
           ({"systems": []}, r"^pcf\.systems: .*empty = every system"),
           ({"systems": ["nsa"]}, r"^pcf\.systems: \['nsa'\] are not systems of this run")]
    for cfg, match in bad:
        with pytest.raises(ValueError, match=match) as err:
            check_pcf_config(cfg, systems)
        assert "\n" not in str(err.value)


def test_skipped_stage_outputs_say_why(tmp_path):
    from vitriflow.surrogates.pcf import write_skipped_outputs
    from vitriflow.surrogates.pcf.report import write_skipped

    out = {k: str(tmp_path / f"{k}.{ext}") for k, ext in
           [("dataset", "parquet"), ("predictions", "parquet"), ("metrics", "parquet"),
            ("training", "json"), ("model", "joblib")]}
    write_skipped_outputs(out, "only 2 compositions", {"stage": "test"})
    assert json.loads(open(out["training"]).read())["skipped"] == "only 2 compositions"
    with pytest.raises(ValueError, match="skipped \\(only 2 compositions\\)"):
        PCFPredictor.load(out["model"])
    write_skipped(tmp_path / "s.html", "only 2 compositions")
    assert "PCF surrogate skipped: only 2 compositions" in (tmp_path / "s.html").read_text()


def test_workflow_scripts_run_on_dag_shaped_tables(tmp_path, repo_root):
    """pcf_train.py and pcf_report.py adapters, driven like Snakemake would (tiny settings)."""
    import importlib.util
    from types import SimpleNamespace

    from vitriflow.config import with_defaults

    def load(name):
        spec = importlib.util.spec_from_file_location(name,
                                                      repo_root / f"workflow/scripts/{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    comps = doped_silicate_compositions(dopants=("ZnO",), amounts=(0.05, 0.1, 0.15, 0.2),
                                        bases=({"SiO2": 1.0},))
    name, r, c = _family_files(tmp_path, comps, "s")
    cfg = {"systems": ["s"], "autoencoder": {**SMALL_AE, "epochs": 5}, "threads": 1,
           "forest": {"cv_folds": 2, "grid": SMALL_GRID}, "report_examples": 4}
    cfg = with_defaults("pcf", cfg)
    out = {k: str(tmp_path / "out" / f"{k}.{ext}") for k, ext in
           [("dataset", "parquet"), ("predictions", "parquet"), ("metrics", "parquet"),
            ("training", "json"), ("model", "joblib")]}
    smk = SimpleNamespace(input=SimpleNamespace(rdf=[str(r)], compositions=[str(c)]), output=out,
                          params=SimpleNamespace(pcf=cfg, systems=["s"]),
                          log=[str(tmp_path / "t.log")])
    load("pcf_train").main(smk)
    assert (PCFPredictor.load(out["model"]).predict({"SiO2": 0.9, "ZnO": 0.1})[1].shape
            == (6, len(R)))
    html = tmp_path / "80_pcf.html"
    rep = SimpleNamespace(input=SimpleNamespace(**{k: v for k, v in out.items() if k != "model"}),
                          output=[str(html)], params=SimpleNamespace(pcf=cfg, reason=""),
                          log=[str(tmp_path / "r.log")])
    load("pcf_report").main(rep)
    assert "Held-out metrics" in html.read_text()
    # too few compositions: outputs still written, section says why
    smk.params.pcf = with_defaults("pcf", {**cfg, "min_compositions": 10})
    load("pcf_train").main(smk)
    load("pcf_report").main(rep)
    assert "skipped" in html.read_text() and "min_compositions is 10" in html.read_text()
