"""The ``vitriflow`` console script: predictions from a saved melt surrogate, errors that name
the input."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from test_viscosity import _synthetic_table  # pytest puts tests/ (no __init__) on sys.path

from vitriflow import cli
from vitriflow.io import read_csv
from vitriflow.surrogates.viscosity import ViscositySurrogate


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    est = ViscositySurrogate(n_models=2, hidden=8, layers=1, max_epochs=3, batch_size=0).fit(
        _synthetic_table()
    )
    path = tmp_path_factory.mktemp("m") / "model.pt"
    est.save(path)
    return path


def test_viscosity_predict_matches_the_estimator(model_path, tmp_path):
    out = tmp_path / "p.csv"
    rc = cli.main(
        [
            "viscosity",
            "predict",
            "--model",
            str(model_path),
            "--composition",
            "SiO2=75,Na2O=25",
            "--composition",
            "sio2=0.7,cao=0.3",
            "--label",
            "NS3",
            "-T",
            "900",
            "1300",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    got, prov = read_csv(out)
    assert prov["stage"] == "cli viscosity predict" and str(model_path) in prov["inputs"]
    assert list(got["label"]) == ["NS3", "NS3", "sio2=0.7,cao=0.3", "sio2=0.7,cao=0.3"]
    assert list(got["T_K"]) == [900, 1300, 900, 1300]
    ref = ViscositySurrogate.load(model_path).predict(
        pd.DataFrame([{"sio2": 0.75, "na2o": 0.25, "al2o3": 0, "k2o": 0, "mgo": 0, "cao": 0}]),
        T=900.0,
    )
    assert got["viscosity_ag"].iloc[0] == pytest.approx(ref["viscosity_ag"].iloc[0], rel=1e-5)
    assert got["viscosity_ag"].iloc[0] > got["viscosity_ag"].iloc[1]  # hotter melt flows more


def test_printed_table_and_version(model_path, capsys):
    assert (
        cli.main(
            [
                "viscosity",
                "predict",
                "--model",
                str(model_path),
                "--composition",
                "SiO2=100",
                "-T",
                "2000",
            ]
        )
        == 0
    )
    assert "viscosity_ag" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and "vitriflow" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--composition", "SiO2=75,FeO=25"],
            "'FeO=25' is not <oxide>=<amount> with an oxide among SiO2, Al2O3",
        ),
        (["--composition", "SiO2=lots"], "amount 'lots' of SiO2 is not a number"),
        (
            ["--composition", "SiO2=75", "--model", "missing.pt"],
            "--model missing.pt: file not found",
        ),
        (["--composition", "SiO2=75", "-T", "-5"], "-T/--temperatures [-5.0]: expected positive"),
        (
            ["--composition", "SiO2=75,Na2O=25", "--wavelength", "589.3"],
            "wavelength 589.3: expected micrometres",
        ),
        (["--composition", "SiO2=75,Na2O=25,SiO2=50"], "SiO2 is given twice"),
        (["--composition", "SiO2=inf,Na2O=1"], "amount of SiO2 is inf; expected a finite number"),
        (
            [
                "--composition",
                "SiO2=75,Na2O=25",
                "--composition",
                "Na2O=100",
                "--label",
                "g",
                "--label",
                "g",
            ],
            "--composition/--label: label(s) ['g'] used more than once",
        ),  # hid the second one's warning
        (
            ["--composition", "SiO2=0,Na2O=0"],
            "--composition/--label[0] (SiO2=0,Na2O=0): row 0 has no oxide content",
        ),
    ],
)
def test_bad_input_is_one_line_naming_it(model_path, capsys, args, message):
    base = ["viscosity", "predict", "--model", str(model_path), "-T", "1000"]
    with pytest.raises(SystemExit) as exc:
        cli.main(base + args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_dissolution_is_passed_through(capsys):
    assert (
        cli.main(["dissolution", "descriptors", "--composition", "Na2O=20,Al2O3=10,SiO2=70"]) == 0
    )
    assert '"n_c"' in capsys.readouterr().out


def test_compositions_outside_the_training_data_get_one_warning_line(model_path, capsys):
    base = ["viscosity", "predict", "--model", str(model_path), "-T", "1000", "1200"]
    assert cli.main(base + ["--composition", "SiO2=70,Na2O=15,K2O=15", "--label", "inside"]) == 0
    assert "warning" not in capsys.readouterr().err  # the synthetic melts are Na-K silicates
    assert cli.main(base + ["--composition", "SiO2=20,CaO=80", "--label", "calcic"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: calcic: outside the training data")
    assert re.search(r"nearest training melt: viscosity \d+, tg \d+, density \d+\)", err[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (
            [
                "dissolution",
                "predict",
                "--models",
                "nowhere.json",
                "--composition",
                "Na2O=20,SiO2=80",
                "--ph",
                "7",
            ],
            "nowhere.json",
        ),
        (["dissolution", "descriptors", "--composition", "Na2O=0,SiO2=0"], ""),
        (
            ["dissolution", "descriptors", "--composition", "Na2O=20,na2o=5,SiO2=75"],
            "na2o is given twice",
        ),
        (
            ["dissolution", "descriptors", "--composition", "Na2O=nan,SiO2=75"],
            "expected a finite number",
        ),
    ],
)
def test_dissolution_bad_input_is_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        exc.value.code == 2
        and len(err) == 1
        and err[0].startswith("vitriflow: error:")
        and message in err[0]
    )


def test_dissolution_models_must_be_models_json(model_path, tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("dissolution:\n  models: [IV]\n")
    for path in (model_path, tmp_path / "config.yaml"):
        with pytest.raises(SystemExit) as exc:
            cli.main(
                [
                    "dissolution",
                    "predict",
                    "--models",
                    str(path),
                    "--composition",
                    "Na2O=25,SiO2=75",
                    "--ph",
                    "7",
                ]
            )
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1, err
        assert (
            err[0].startswith(f"vitriflow: error: {path}: ")
            and "expected the models.json written by dissolution_evaluate" in err[0]
        )


def test_a_model_file_of_another_kind_is_named(tmp_path, capsys):
    import joblib

    joblib.dump({"not": "a melt model"}, tmp_path / "model.joblib")
    with pytest.raises(SystemExit):
        cli.main(
            [
                "viscosity",
                "predict",
                "--model",
                str(tmp_path / "model.joblib"),
                "--composition",
                "SiO2=100",
                "-T",
                "2000",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.joblib: not a readable vitriflow viscosity model" in err[0]
