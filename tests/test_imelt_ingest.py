"""Ingestion of the i-Melt database: tidy schema, units, provenance, bad rows reported and
excluded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vitriflow.surrogates.viscosity import data as im
from vitriflow.surrogates.viscosity.features import OXIDES

pytest.importorskip("imelt")


@pytest.fixture(scope="module")
def raw():
    return im.load_imelt(properties=("viscosity", "density", "refractive_index", "cp_liquid"))


def test_tidy_schema_and_split_sizes(raw):
    assert list(raw.columns) == im.COLUMNS
    n = raw.groupby(["property", "split"]).size()
    assert (n["viscosity", "train"], n["viscosity", "valid"], n["viscosity", "test"]) == (
        5101,
        552,
        626,
    )
    assert (n["density", "train"], n["density", "valid"], n["density", "test"]) == (569, 71, 69)
    assert set(raw.loc[raw.property == "viscosity", "unit"]) == {"log10 Pa s"}
    assert raw["row_id"].is_unique
    ri = raw[raw.property == "refractive_index"]
    assert ri["wavelength_um"].between(0.2, 2.0).all()  # micrometres
    assert np.allclose(raw.loc[:, list(OXIDES)].sum(axis=1), 1.0, atol=1e-6)


def test_corrupted_rows_are_excluded_and_reported(raw):
    df = raw[raw.property == "viscosity"].head(50).copy()
    df.loc[df.index[3], "sio2"] += 0.2  # fractions no longer sum to 1
    df.loc[df.index[7], "T_K"] = -5.0  # negative temperature
    df.loc[df.index[11], "value"] = np.nan  # missing measurement
    good, bad = im.validate(df)
    assert len(good) == 47 and len(bad) == 3
    assert set(bad["row_id"]) == {df["row_id"].iloc[i] for i in (3, 7, 11)}
    assert set(bad["reason"]) == {
        "oxide fractions do not sum to 1 (tol 0.001)",
        "temperature missing or not positive",
        "value is NaN/inf",
    }
    assert not set(bad["row_id"]) & set(good["row_id"])


def test_shipped_cp_rows_at_zero_kelvin_are_rejected(raw):
    good, bad = im.validate(raw)
    assert len(bad) == 7 and set(bad["property"]) == {"cp_liquid"}
    assert (good.loc[good.property == "cp_liquid", "T_K"] > 0).all()


def test_ingest_provenance_has_version_and_checksums():
    good, bad, prov = im.ingest()
    assert prov["imelt_version"].startswith("2.")
    assert (
        "NKCMAS_viscosity.hdf5" in prov["files"]
        and len(prov["files"]["NKCMAS_viscosity.hdf5"]) == 64
    )
    assert prov["n_rejected"] == len(bad) and prov["n_rows"] == len(good) + len(bad)


def test_user_csv_in_mol_percent_is_added_and_validated(tmp_path):
    p = tmp_path / "mine.csv"
    pd.DataFrame(
        {
            "property": ["viscosity", "density", "viscosity"],
            "split": ["train"] * 3,
            "sio2": [75, 75, 75],
            "al2o3": [0, 0, 0],
            "na2o": [25, 25, 25],
            "k2o": 0,
            "mgo": 0,
            "cao": 0,
            "T_K": [1200, None, None],
            "value": [4.1, 2.4, 3.0],
        }
    ).to_csv(p, index=False)
    df = im.read_user_csv(p, first_row_id=100)
    assert df["sio2"].iloc[0] == pytest.approx(0.75)
    assert list(df["row_id"]) == [100, 101, 102]
    good, bad = im.validate(df)
    assert len(good) == 2 and bad["reason"].tolist() == ["temperature missing or not positive"]


def test_user_csv_whose_every_row_is_rejected_stops_the_ingestion(tmp_path):
    p = tmp_path / "nm.csv"
    pd.DataFrame(
        {
            "property": ["refractive_index"] * 2,
            "split": ["train"] * 2,
            "sio2": [75, 80],
            "al2o3": 0,
            "na2o": [25, 20],
            "k2o": 0,
            "mgo": 0,
            "cao": 0,
            "wavelength_um": [589.3, 632.8],
            "value": [1.50, 1.49],
        }
    ).to_csv(p, index=False)
    with pytest.raises(
        ValueError, match=r"nm.csv: none of its 2 rows is usable .*given in nm\? expected µm"
    ):
        im.ingest(user_csvs=[p])


def test_user_csvs_with_the_same_name_in_two_folders_stay_apart(tmp_path):
    rows = {
        "property": ["density"],
        "split": ["train"],
        "sio2": [75],
        "al2o3": 0,
        "na2o": [25],
        "k2o": 0,
        "mgo": 0,
        "cao": 0,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pd.DataFrame({**rows, "value": [2.40]}).to_csv(tmp_path / "a" / "data.csv", index=False)
    pd.DataFrame({**rows, "value": [float("nan")]}).to_csv(tmp_path / "b" / "data.csv", index=False)
    with pytest.raises(
        ValueError, match=r"b/data.csv: none of its 1 rows is usable"
    ):  # not a/data.csv
        im.ingest(user_csvs=[tmp_path / "a" / "data.csv", tmp_path / "b" / "data.csv"])
    pd.DataFrame({**rows, "value": [2.41]}).to_csv(tmp_path / "b" / "data.csv", index=False)
    good, _, prov = im.ingest(user_csvs=[tmp_path / "a" / "data.csv", tmp_path / "b" / "data.csv"])
    assert good["source"].str.startswith("user:").sum() == 2 and good["source"].nunique() > 2
    assert {str(tmp_path / d / "data.csv") for d in "ab"} <= set(prov["files"])


def test_user_csv_missing_column_names_file(tmp_path):
    p = tmp_path / "bad.csv"
    pd.DataFrame({"property": ["tg"], "value": [900]}).to_csv(p, index=False)
    with pytest.raises(ValueError, match="bad.csv: missing columns"):
        im.read_user_csv(p)


@pytest.fixture(scope="module")
def raman():
    return im.load_imelt_raman()


def test_raman_spectra_tidy_long_table(raman):
    assert list(raman.columns) == im.RAMAN_COLUMNS
    per_split = raman.groupby("split")["spectrum_id"].nunique()
    assert (per_split["train"], per_split["valid"], per_split["test"]) == (206, 26, 26)
    assert (raman.groupby("spectrum_id").size() == 850).all()
    one = raman[raman.spectrum_id == 0]
    assert one["wavenumber_cm1"].iloc[0] == 400.0 and one["wavenumber_cm1"].iloc[-1] == 1249.0
    assert one["intensity"].max() == pytest.approx(1.0)  # i-Melt normalises each spectrum to max 1
    assert np.allclose(raman.loc[:, list(OXIDES)].sum(axis=1), 1.0, atol=1e-6)


def test_raman_bad_spectrum_is_rejected_whole(raman):
    df = raman[raman.spectrum_id < 4].copy()
    df.loc[df.index[900], "intensity"] = np.nan  # one channel of spectrum 1
    df.loc[df.spectrum_id == 3, "na2o"] += 0.1  # spectrum 3's composition no longer sums to 1
    good, bad = im.validate_raman(df)
    assert sorted(good["spectrum_id"].unique()) == [0, 2] and len(good) == 2 * 850
    assert dict(zip(bad["spectrum_id"], bad["reason"], strict=True)) == {
        1: "intensity is NaN/inf",
        3: "oxide fractions do not sum to 1 (tol 0.001)",
    }


def test_raman_ingest_provenance():
    good, bad, prov = im.ingest_raman()
    assert prov["n_spectra"] == 258 and prov["n_rejected"] == 0 and len(bad) == 0
    assert prov["counts"] == {"test": 26, "train": 206, "valid": 26}
    assert len(prov["files"][im.RAMAN_FILE]) == 64
