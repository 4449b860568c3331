"""GNN surrogate: periodic graphs, ideal-mixing reference, determinism, save/load, dataset rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from ase import Atoms

from vitriflow.io import provenance, read_csv, read_structures, write_structures, write_table
from vitriflow.surrogates.gnn import GNNRegressor, load_dataset, metrics_table
from vitriflow.surrogates.gnn.graphs import neighbour_edges, rbf_expand, to_graph

torch.set_num_threads(1)
SMALL = dict(cutoff_A=3.0, n_rbf=8, hidden=8, layers=2, epochs=30, batch_size=4, n_models=2, seed=3)


def _cell(n_si: int, seed: int, a: float = 6.0, n_atoms: int = 18) -> Atoms:
    """A random periodic Si/O cell with n_si silicon atoms."""
    rng = np.random.default_rng(seed)
    return Atoms(["Si"] * n_si + ["O"] * (n_atoms - n_si),
                 positions=rng.uniform(0, a, (n_atoms, 3)), cell=[a, a, a], pbc=True)


def test_periodic_neighbours_and_smooth_cutoff():
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=[2.0, 2.0, 2.0], pbc=True)  # simple cubic
    edges, d = neighbour_edges(atoms, 2.1)
    assert edges.shape == (2, 6) and np.allclose(d, 2.0)  # six images across the boundaries
    rbf = rbf_expand(torch.tensor([0.5, 2.999, 3.0, 3.5]), 3.0, 8)
    assert (rbf[0] > 0).any() and rbf[1].abs().max() < 1e-5 and (rbf[2:] == 0).all()
    with pytest.raises(ValueError, match="not periodic"):
        neighbour_edges(Atoms("Si2", positions=[[0, 0, 0], [1, 0, 0]]), 2.0)


def test_ideal_mixing_targets_are_reproduced_and_fit_is_deterministic(tmp_path):
    cells = [_cell(n, seed) for n in (4, 6, 8) for seed in range(4)]
    frac = np.array([a.get_chemical_symbols().count("Si") / len(a) for a in cells])
    y = -8.0 * frac - 5.0 * (1 - frac)  # linear in the element fractions: no structure in it
    est = GNNRegressor(**SMALL).fit(cells, y)
    mean, std = est.predict(cells)
    np.testing.assert_allclose(mean, y, atol=1e-5)
    again, _ = GNNRegressor(**SMALL).fit(cells, y).predict(cells)
    np.testing.assert_array_equal(mean, again)
    est.save(tmp_path / "m.pt")
    loaded, _ = GNNRegressor.load(tmp_path / "m.pt").predict(cells)
    np.testing.assert_array_equal(mean, loaded)
    with pytest.raises(ValueError, match=r"elements \['Na'\] the model was not trained on"):
        est.predict([Atoms("NaO", positions=[[0, 0, 0], [1, 1, 1]], cell=[4, 4, 4], pbc=True)])


def test_network_learns_a_structural_target():
    # one composition; target: a smooth Si-O coordination, which only the structure tells
    cells = [_cell(6, seed, a=5.0) for seed in range(24)]

    def coordination(a):
        edges, d = neighbour_edges(a, 3.0)
        sym = np.array(a.get_chemical_symbols())
        si_o = (sym[edges[0]] == "Si") & (sym[edges[1]] == "O")
        return float(np.exp(-((d[si_o] / 1.8) ** 2)).sum() / 6)

    y = np.array([coordination(a) for a in cells])
    est = GNNRegressor(**{**SMALL, "hidden": 16, "epochs": 400, "n_models": 1}).fit(cells, y)
    loss = est.history_[0]["train_mse_scaled"]
    assert loss[-1] < 0.1 * loss[0]
    pred, _ = est.predict(cells)
    assert np.corrcoef(pred, y)[0, 1] > 0.9  # a composition-only model: no correlation at all


def _write_system(tmp_path, name, potential, statuses):
    frames, rows = [], []
    for k, status in enumerate(statuses):
        a = _cell(6, k)
        sid = f"{name}-c{k // 2:04d}-r{k % 2:02d}"
        a.info.update(structure_id=sid, status=status)
        frames.append(a)
        rows.append({"structure_id": sid, "label": f"comp{k // 2}", "replica": k % 2,
                     "potential": potential, "status": status,
                     "reason": "" if status == "ok" else "exploded",
                     "energy_per_atom_eV": -7.0 + 0.01 * k if status == "ok" else np.nan})
    q, p = tmp_path / f"{name}.extxyz", tmp_path / f"{name}.parquet"
    write_structures(frames, q)
    write_table(pd.DataFrame(rows), p, provenance(stage="test"))
    return name, str(q), str(p)


def test_dataset_excludes_failed_structures_and_refuses_mixed_potentials(tmp_path):
    a = _write_system(tmp_path, "a", "teter", ["ok", "ok", "failed", "ok"])
    frames, table, excluded = load_dataset([a], "energy_per_atom_eV")
    assert len(frames) == 3 and list(excluded["reason"]) == ["exploded"]
    assert {"x_O", "x_Si"} <= set(table.columns)
    b = _write_system(tmp_path, "b", "bks", ["ok", "ok"])
    with pytest.raises(ValueError, match=r"simulated with \['bks', 'teter'\]"):
        load_dataset([a, b], "energy_per_atom_eV")
    with pytest.raises(ValueError, match="gnn.target"):
        load_dataset([a], "viscosity")
    frames, table, excluded = load_dataset([_write_system(tmp_path, "c", "teter", ["failed"] * 2)],
                                           "energy_per_atom_eV")
    # the rule then skips, with the reason
    assert frames == [] and len(table) == 0 and len(excluded) == 2


def test_one_unusable_structure_is_excluded_with_its_reason_and_the_rest_train(tmp_path):
    name, quenched, properties = _write_system(tmp_path, "a", "teter", ["ok"] * 6)
    frames = read_structures(quenched)
    frames[1].positions[3] = np.nan  # an exploded cell that still says "ok"
    frames[4].cell = np.zeros((3, 3))  # a zero-volume cell
    write_structures(frames, quenched)
    frames, table, excluded = load_dataset([(name, quenched, properties)], "energy_per_atom_eV")
    assert len(frames) == len(table) == 4
    assert list(excluded["structure_id"]) == ["a-c0000-r01", "a-c0002-r00"]
    assert ("positions are not finite" in excluded["reason"][0]
            and "cell volume" in excluded["reason"][1])
    est = GNNRegressor(**{**SMALL, "epochs": 2}).fit(frames, table["y_true"].to_numpy())
    assert np.isfinite(est.predict(frames)[0]).all()
    # a direct caller still hears why
    with pytest.raises(ValueError, match="positions are not finite"):
        to_graph(read_structures(quenched)[1], ["O", "Si"], 3.0, 8)


def test_metrics_separate_structure_from_composition():
    pred = pd.DataFrame({"label": ["x", "x", "y", "y"], "y_true": [1.0, 1.2, 2.0, 2.4]})
    pred["pred_gnn"] = pred["y_true"] + 0.01          # reads the replica differences
    # composition means (up to rounding)
    pred["pred_composition_ridge"] = [1.1, 1.1 + 1e-15, 2.2, 2.2]
    pred["pred_mean"] = 1.65
    pred["std_gnn"] = [0.01, 0.01, 0.001, 0.001]
    m = metrics_table(pred, "eV/atom").set_index("model")
    assert m.loc["gnn", "within_composition_r"] == pytest.approx(1.0)
    assert np.isnan(m.loc["composition_ridge", "within_composition_r"])
    assert m.loc["gnn", "rmse"] == pytest.approx(0.01)
    # 0.01 off: inside 2 x 0.01, not 2 x 0.001
    assert m.loc["gnn", "coverage_2std"] == pytest.approx(0.5)
    assert np.isnan(m.loc["gnn", "coverage_95_calibrated"])  # no calibrated sigma given
    assert m.loc["gnn", "replica_spread_rms"] == pytest.approx(
        np.sqrt((0.1**2 * 2 + 0.2**2 * 2) / 4))


def test_cli_predicts_every_frame_like_the_estimator(tmp_path, capsys):
    from vitriflow.cli import main

    _, quenched, _ = _write_system(tmp_path, "a", "teter", ["ok"] * 4)
    frames = [_cell(n, s) for n in (4, 8) for s in range(3)]
    y = np.linspace(-7.0, -6.0, len(frames))
    est = GNNRegressor(**{**SMALL, "epochs": 3}).fit(frames, y)
    est.save(tmp_path / "m.pt", target="energy_per_atom_eV")
    assert main(["gnn", "predict", "--model", str(tmp_path / "m.pt"), quenched,
                 "--out", str(tmp_path / "p.csv")]) == 0
    out = read_csv(tmp_path / "p.csv")[0]
    from vitriflow.io import read_structures
    mean, std = est.predict(read_structures(quenched))
    np.testing.assert_allclose(out["energy_per_atom_eV"], mean, rtol=1e-5)
    assert list(out["structure_id"]) == [f"a-c{k // 2:04d}-r{k % 2:02d}" for k in range(4)]
    with pytest.raises(SystemExit):
        main(["gnn", "predict", "--model", str(tmp_path / "m.pt"), str(tmp_path / "none.extxyz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.extxyz: structure file not found" in err[0]


def _saved_model_and_frames(tmp_path, n_frames):
    """A tiny energy model saved as tmp_path/m.pt and ``n_frames`` new cells named f0, f1, ..."""
    est = GNNRegressor(**{**SMALL, "epochs": 2, "n_models": 1}).fit(
        [_cell(n, s) for n in (4, 8) for s in range(2)], [-7.0, -7.1, -6.0, -6.1])
    est.save(tmp_path / "m.pt", target="energy_per_atom_eV")
    frames = [_cell(6, k) for k in range(n_frames)]
    for k, a in enumerate(frames):
        a.info["structure_id"] = f"f{k}"
    return est, frames


def test_cli_predicts_the_good_frames_and_names_each_bad_one(tmp_path, capsys):
    from vitriflow.cli import main

    est, frames = _saved_model_and_frames(tmp_path, 4)
    frames[1].positions[2] = np.nan  # an exploded cell
    frames[2].numbers[:2] = 11  # sodium: the model never saw it
    write_structures(frames, tmp_path / "mixed.extxyz")
    (tmp_path / "broken.extxyz").write_text("hello\n")
    model = ["gnn", "predict", "--model", str(tmp_path / "m.pt")]
    assert main([*model, str(tmp_path / "mixed.extxyz"), str(tmp_path / "broken.extxyz"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    out = read_csv(tmp_path / "p.csv", keep_default_na=False, na_values=[""])[0]
    assert list(out["status"]) == ["ok", "failed", "failed", "ok", "failed"]
    assert "positions are not finite" in out["reason"][1]
    assert "elements ['Na'] the model was not trained on" in out["reason"][2]
    assert ("broken.extxyz" in out["file"][4]
            and out["reason"][4].startswith("not readable as extended XYZ"))
    good = est.predict([frames[0], frames[3]])[0]
    np.testing.assert_allclose(out["energy_per_atom_eV"][[0, 3]], good, rtol=1e-5)
    assert out["energy_per_atom_eV"][[1, 2, 4]].isna().all()
    err = capsys.readouterr().err.strip().splitlines()
    assert (len(err) == 3
            and "mixed.extxyz frame 1 (f1): not predicted: positions are not finite" in err[0])
    assert "frame 2 (f2)" in err[1] and "broken.extxyz: not predicted: not readable" in err[2]
    with pytest.raises(SystemExit) as exc:  # nothing predictable: one line, not a table of failures
        main([*model, str(tmp_path / "broken.extxyz")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (len(err) == 1 and "no frame could be predicted (1 failed); " in err[0]
            and "broken.extxyz" in err[0])
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(SystemExit):
        main([*model, str(tmp_path / "empty.extxyz")])
    assert "empty.extxyz: no frames in the file" in capsys.readouterr().err


def test_cli_a_damaged_frame_fails_alone_in_its_file(tmp_path, capsys):
    """One garbled frame in a multi-frame file: the frames before and after it are predicted."""
    from vitriflow.cli import main

    est, frames = _saved_model_and_frames(tmp_path, 3)
    write_structures(frames, tmp_path / "three.extxyz")
    lines = (tmp_path / "three.extxyz").read_text().splitlines(keepends=True)
    n = len(frames[0])
    first_atom_of_frame_1 = (n + 2) + 2
    lines[first_atom_of_frame_1] = "Si not-a-number 0.0 0.0\n"  # a disk error in frame 1
    (tmp_path / "three.extxyz").write_text("".join(lines))
    assert main(["gnn", "predict", "--model", str(tmp_path / "m.pt"),
                 str(tmp_path / "three.extxyz"), "--out", str(tmp_path / "p.csv")]) == 0
    out = read_csv(tmp_path / "p.csv", keep_default_na=False, na_values=[""])[0]
    assert list(out["status"]) == ["ok", "failed", "ok"] and list(out["frame"]) == [0, 1, 2]
    assert list(out["structure_id"].fillna("")) == ["f0", "", "f2"]
    assert out["reason"][1].startswith(f"not readable as extended XYZ: line {n + 3}")
    np.testing.assert_allclose(out["energy_per_atom_eV"][[0, 2]],
                               est.predict([frames[0], frames[2]])[0], rtol=1e-5)
    assert "three.extxyz frame 1" in capsys.readouterr().err


def test_out_of_fold_residuals_recalibrate_the_saved_models_spread(tmp_path):
    from vitriflow.surrogates.gnn import train_and_evaluate

    frames = [_cell(n, s) for n in (4, 5, 6, 7, 8) for s in range(3)]
    table = pd.DataFrame({"structure_id": [f"s{k}" for k in range(15)], "system": "a",
                          "label": [f"c{k // 3}" for k in range(15)],
                          "replica": [k % 3 for k in range(15)],
                          "x_Si": [a.get_chemical_symbols().count("Si") / 18 for a in frames]})
    table["x_O"] = 1 - table["x_Si"]
    table["y_true"] = -7.0 * table["x_Si"] + np.random.default_rng(0).normal(0, 0.05, 15)  # noisy
    settings = {**SMALL, "epochs": 5, "lr": 3e-3, "weight_decay": 1e-4,
                "target": "energy_per_atom_eV", "cv_folds": 5}
    res = train_and_evaluate(frames, table, settings)
    noise = res["model"].calibration_
    assert noise is not None and noise["n"] == 15 and noise["a"] >= 1.0
    p = res["predictions"]
    assert (p["sigma_gnn"] >= p["std_gnn"] - 1e-12).all()  # never narrower than the raw spread
    res["model"].save(tmp_path / "m.pt")
    _, sigma = GNNRegressor.load(tmp_path / "m.pt").predict(frames)
    assert sigma.min() >= noise["b"] - 1e-9  # the floor travels with the saved model


def test_killed_fit_resumes_from_its_member_checkpoints(tmp_path):
    cells = [_cell(n, s) for n in (4, 6, 8) for s in range(3)]
    y = np.linspace(-7.0, -6.0, len(cells))
    settings = {**SMALL, "epochs": 5}
    uninterrupted, _ = GNNRegressor(**settings).fit(cells, y).predict(cells)
    ckpt = tmp_path / "ckpt"
    first = GNNRegressor(**settings).fit(cells, y, checkpoint_dir=ckpt)
    assert (first.resumed_members_ == 0
            and sorted(p.name for p in ckpt.iterdir()) == ["member0.pt", "member1.pt"])
    (ckpt / "member1.pt").unlink()  # killed while member 1 was training
    resumed = GNNRegressor(**settings).fit(cells, y, checkpoint_dir=ckpt)
    assert resumed.resumed_members_ == 1
    np.testing.assert_array_equal(resumed.predict(cells)[0], uninterrupted)
    (ckpt / "member0.pt").write_bytes(b"half-written")  # damaged: retrained, not fatal
    assert GNNRegressor(**settings).fit(cells, y, checkpoint_dir=ckpt).resumed_members_ == 1
    # other targets or settings never take members trained for something else
    assert GNNRegressor(**settings).fit(cells, y + 0.01, checkpoint_dir=ckpt).resumed_members_ == 0
    assert GNNRegressor(**{**settings, "seed": 4}).fit(
        cells, y + 0.01, checkpoint_dir=ckpt).resumed_members_ == 0


def test_cross_validation_resumes_every_fold_and_the_final_fit(tmp_path):
    from vitriflow.surrogates.gnn import train_and_evaluate

    frames = [_cell(n, s) for n in (4, 6, 8) for s in range(2)]
    table = pd.DataFrame({"structure_id": [f"s{k}" for k in range(6)], "system": "a",
                          "label": [f"c{k // 2}" for k in range(6)],
                          "replica": [k % 2 for k in range(6)],
                          "x_Si": [a.get_chemical_symbols().count("Si") / 18 for a in frames]})
    table["x_O"] = 1 - table["x_Si"]
    table["y_true"] = -7.0 * table["x_Si"] + np.array([0.01, -0.02, 0.0, 0.03, -0.01, 0.02])
    settings = {**SMALL, "epochs": 3, "lr": 3e-3, "weight_decay": 1e-4,
                "target": "energy_per_atom_eV", "cv_folds": 3}
    first = train_and_evaluate(frames, table, settings, checkpoint_dir=tmp_path / "ck")
    assert first["run"]["resumed_members"] == 0 and first["training"]["device"] == "cpu"
    assert "resumed_members" not in first["training"]  # differs after a resume: provenance only
    # run-dependent seconds go to the provenance record, not training.json's body or the tables
    assert ("final_seconds" not in first["training"]
            and all("seconds" not in f for f in first["training"]["folds"]))
    from vitriflow.io import read_table
    from vitriflow.surrogates.gnn import write_outputs

    out = {"model": str(tmp_path / "m.pt"), "predictions": str(tmp_path / "p.parquet"),
           "metrics": str(tmp_path / "m.parquet"), "training": str(tmp_path / "t.json")}
    write_outputs(first, pd.DataFrame(columns=["structure_id", "system", "reason"]), settings, out,
                  {"stage": "test"})
    _, prov = read_table(out["metrics"])
    assert len(prov["timings"]["cv_fold_s"]) == 3 and prov["timings"]["final_s"] > 0
    assert (sorted(p.name for p in (tmp_path / "ck").iterdir())
            == ["final", "fold0", "fold1", "fold2"])
    again = train_and_evaluate(frames, table, settings, checkpoint_dir=tmp_path / "ck")
    assert again["run"]["resumed_members"] == 4 * SMALL["n_models"]
    pd.testing.assert_frame_equal(again["predictions"], first["predictions"])
    from vitriflow.surrogates.gnn.report import build_section

    build_section(tmp_path / "s.html", again["predictions"], again["metrics"], {**again["training"],
                  "settings": settings, "excluded": [], "provenance": again["run"]})
    html = (tmp_path / "s.html").read_text()
    assert "Trained on cpu (8 members came from the checkpoints of an interrupted run)" in html


def test_config_check_names_unknown_systems_and_mixed_potentials():
    from types import SimpleNamespace

    from vitriflow.config import with_defaults
    from vitriflow.surrogates.gnn.checks import check_config

    def check_gnn_config(section, systems):
        return check_config(with_defaults("gnn", section), SimpleNamespace(systems=systems))

    systems = {"s": SimpleNamespace(potential="teter"), "t": SimpleNamespace(potential="bks"),
               "u": SimpleNamespace(potential="teter")}
    assert check_gnn_config({"systems": ["u", "s"]}, systems) == ["u", "s"]
    assert check_gnn_config({"systems": []}, {"s": systems["s"], "u": systems["u"]}) == ["s", "u"]
    with pytest.raises(ValueError,
                       match=r"^gnn.systems: \['nope'\] are not systems of this run \(known: "):
        check_gnn_config({"systems": ["nope"]}, systems)
    with pytest.raises(ValueError) as exc:
        check_gnn_config({"systems": []}, systems)  # empty: every system of the run
    assert str(exc.value).startswith("gnn.systems: the family mixes potentials {'bks': ['t'], "
                                     "'teter': ['s', 'u']}; expected systems of one potential")
    assert "\n" not in str(exc.value)


def test_cv_leaves_a_structure_with_an_element_unseen_by_its_fold_unpredicted_and_names_it(
        tmp_path):
    from vitriflow.surrogates.gnn import train_and_evaluate
    from vitriflow.surrogates.gnn.report import build_section

    frames = [_cell(n, s) for n in (4, 6, 8) for s in range(2)]
    for s in range(2):  # the only composition with sodium: its fold trains on Si and O alone
        na = _cell(6, 10 + s)
        na.numbers[:2] = 11
        frames.append(na)
    table = pd.DataFrame({"structure_id": [f"s{k}" for k in range(8)], "system": "a",
                          "label": [f"c{k // 2}" for k in range(8)],
                          "replica": [k % 2 for k in range(8)]})
    for el in ("Na", "O", "Si"):
        table[f"x_{el}"] = [a.get_chemical_symbols().count(el) / 18 for a in frames]
    table["y_true"] = (-7.0 * table["x_Si"] - 3.0 * table["x_Na"]
                       + np.array([1, -2, 0, 3, -1, 2, 1, 0]) * 0.01)
    settings = {**SMALL, "epochs": 2, "n_models": 1, "lr": 3e-3, "weight_decay": 1e-4,
                "target": "energy_per_atom_eV", "cv_folds": 4}
    res = train_and_evaluate(frames, table, settings)
    p = res["predictions"].set_index("structure_id")
    assert p.loc[["s6", "s7"],
                 ["pred_gnn", "pred_composition_ridge", "pred_mean"]].isna().all().all()
    assert p.loc[["s0", "s5"],
                 ["pred_gnn", "pred_composition_ridge", "pred_mean"]].notna().all().all()
    assert p.loc["s6", "reason"].endswith("elements ['Na'] the model was not trained on (trained: "
                                          "['O', 'Si'])")
    assert p.loc["s6", "reason"].startswith(f"fold {p.loc['s6', 'fold']}: ")
    m = res["metrics"].set_index("model")
    assert ((m["n_structures"] == 6).all() and (m["n_not_predicted"] == 2).all()
            and (m["n_compositions"] == 3).all())
    assert np.isfinite(m.loc["gnn", "rmse"])
    assert [r["structure_id"] for r in res["training"]["not_predicted"]] == ["s6", "s7"]
    assert res["model"].species_ == ["Na", "O", "Si"]  # the saved model has seen every element
    build_section(tmp_path / "s.html", res["predictions"], res["metrics"],
                  {**res["training"], "settings": settings, "excluded": []})
    assert "2 structure(s) have no out-of-fold prediction" in (tmp_path / "s.html").read_text()
    # a family in which no held-out composition can be predicted: evaluated nowhere, said so
    only = [frames[0], frames[1], frames[6], frames[7]]
    for a in only[:2]:
        a.numbers[a.numbers == 14] = 32  # GeO2-like: the two compositions share only oxygen
    t2 = table.iloc[[0, 1, 6, 7]].reset_index(drop=True)
    res = train_and_evaluate(only, t2, {**settings, "cv_folds": 2})
    assert res["metrics"]["n_structures"].eq(0).all() and len(res["training"]["not_predicted"]) == 4
    build_section(tmp_path / "s.html", res["predictions"], res["metrics"],
                  {**res["training"], "settings": settings, "excluded": []})
    assert "No structure could be predicted out of fold" in (tmp_path / "s.html").read_text()
