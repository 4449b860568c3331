"""Matching MD compositions to measured glasses of the i-Melt NKCMAS database, and the
MD-vs-experiment parity table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vitriflow.io import write_table
from vitriflow.properties.experiment import (
    RI_WAVELENGTH_UM,
    VITREOUS_SILICA,
    is_pure_silica,
    load_measured,
    match_rows,
    measured_properties,
    measured_table,
    oxide_vector,
    parity_table,
    spearman_tg,
)

NS30 = {"SiO2": 70, "Na2O": 30}  # i-Melt density glass 70 SiO2 - 30 Na2O (mol%)


@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    return load_measured(properties=("density", "tg", "refractive_index"))


def _row(measured, prop, **x):
    sel = measured["property"] == prop
    for ox in ("sio2", "al2o3", "na2o", "k2o", "mgo", "cao"):
        sel &= np.isclose(measured[ox], x.get(ox, 0.0), atol=1e-9)
    return measured[sel]


def test_oxide_vector_and_labels():
    x, other = oxide_vector("(Na2O)0.3-(Al2O3)0.1-(SiO2)0.6")  # the structures' label form
    np.testing.assert_allclose(x, [0.6, 0.1, 0.3, 0, 0, 0])
    assert other == 0.0
    x, other = oxide_vector({"SiO2": 70, "Na2O": 25, "B2O3": 5})
    assert other == pytest.approx(0.05) and x[0] == pytest.approx(0.70)
    assert is_pure_silica("SiO2") and not is_pure_silica(NS30)


def test_composition_within_one_mol_percent_finds_the_glass(measured):
    ref = _row(measured, "density", sio2=0.70, na2o=0.30)
    assert len(ref) == 1
    rows = match_rows({"SiO2": 69.5, "Na2O": 30.5}, measured)
    dens = rows[rows["property"] == "density"]
    assert list(dens["row_id"]) == list(ref["row_id"])
    assert dens["distance"].iloc[0] == pytest.approx(0.005)
    out = measured_properties({"SiO2": 69.5, "Na2O": 30.5}, measured).set_index("property")
    assert out.loc["density", "exp_n"] == 1
    assert out.loc["density", "exp_mean"] == pytest.approx(float(ref["value"].iloc[0]))
    assert out.loc["density", "unit"] == "g/cm3" and out.loc["density", "source"] == "imelt"
    assert out.loc["density", "distance_max"] == pytest.approx(0.005)
    assert set(out.index) == {"density", "elastic_modulus", "cte", "tg", "refractive_index"}


@pytest.mark.parametrize("comp", [{"SiO2": 67, "Na2O": 30, "K2O": 3},
                                  {"SiO2": 70, "Na2O": 27, "K2O": 3}])
def test_composition_three_mol_percent_away_does_not(measured, comp):
    ref = _row(measured, "density", sio2=0.70, na2o=0.30)
    rows = match_rows(comp, measured)
    assert not set(rows["row_id"]) & set(ref["row_id"])
    out = measured_properties(comp, measured).set_index("property")
    assert out.loc["density", "exp_n"] == 0 and np.isnan(out.loc["density", "exp_mean"])
    assert out.loc["density", "unit"] == "g/cm3"
    # the same glass is found once the tolerance covers the 3 mol% step
    wide = match_rows(comp, measured, tol=0.03)
    assert set(ref["row_id"]) <= set(wide["row_id"])


def test_max_norm_is_per_oxide_l1half_counts_the_total(measured):
    # 0.8 mol% off in each of four oxides: every oxide within 1 mol% (max-norm 0.008),
    # but 1.6 mol% of the batch moved (L1/2 = 0.016)
    comp = {"SiO2": 69.2, "Na2O": 29.2, "K2O": 0.8, "CaO": 0.8}
    ref = _row(measured, "density", sio2=0.70, na2o=0.30)
    by_max = match_rows(comp, measured, metric="max")
    assert set(ref["row_id"]) <= set(by_max["row_id"])
    assert by_max.loc[by_max["row_id"].isin(ref["row_id"]), "distance"].iloc[0] == \
        pytest.approx(0.008)
    assert not set(ref["row_id"]) & set(match_rows(comp, measured, metric="l1half")["row_id"])
    with pytest.raises(ValueError, match="metric='l2'"):
        match_rows(comp, measured, metric="l2")


def test_refractive_index_only_near_the_sodium_d_line(measured):
    ri = measured[measured["property"] == "refractive_index"]
    far = ri[np.abs(ri["wavelength_um"] - RI_WAVELENGTH_UM) > 0.05].iloc[0]
    comp = {ox: float(far[ox.lower()]) for ox in ("SiO2", "Al2O3", "Na2O", "K2O", "MgO", "CaO")}
    rows = match_rows({k: v for k, v in comp.items() if v > 0}, measured)
    rows = rows[rows["property"] == "refractive_index"]
    assert far["row_id"] not in set(rows["row_id"])
    assert (np.abs(rows["wavelength_um"] - RI_WAVELENGTH_UM) <= 0.005).all()


def test_pure_silica_gets_the_vitreous_silica_reference(measured):
    out = measured_properties("SiO2", measured)
    ref = out[out["source"] != "imelt"].set_index("property")
    assert {p: ref.loc[p, "exp_mean"] for p in ref.index} == {
        p: v for p, (v, _) in VITREOUS_SILICA.items()}
    assert ref.loc["elastic_modulus", "unit"] == "GPa" and "2013" in ref["source"].iloc[0]
    # i-Melt's silica density agrees with the reference value
    imelt = out[out["source"] == "imelt"].set_index("property")
    assert imelt.loc["density", "exp_n"] >= 1
    assert imelt.loc["density", "exp_mean"] == pytest.approx(2.20, abs=0.01)
    # the reference values are mutually consistent: E = 9KG/(3K+G), nu = (3K-2G)/(2(3K+G))
    k, g = VITREOUS_SILICA["bulk_modulus"][0], VITREOUS_SILICA["shear_modulus"][0]
    assert 9 * k * g / (3 * k + g) == pytest.approx(VITREOUS_SILICA["elastic_modulus"][0], rel=5e-3)
    assert (3 * k - 2 * g) / (2 * (3 * k + g)) == pytest.approx(0.17, abs=5e-3)


def test_parity_table_from_replicas(measured):
    md = pd.DataFrame({
        "composition": ["NS30"] * 3 + ["silica"] * 2 + ["NS30"],
        "property": ["density"] * 5 + ["cte"],
        "potential": ["shik"] * 6,
        "value": [2.40, 2.44, 2.42, 2.25, 2.27, 11.0],
    })
    exp = measured_table({"NS30": NS30, "silica": "SiO2"}, measured,
                         properties=("density", "tg"))
    assert set(exp.columns) >= {"composition", "property", "exp_mean", "exp_n", "source"}
    par = parity_table(md, exp)
    assert list(par.columns) == ["composition", "property", "potential", "md_mean", "md_std",
                                 "n_replicas", "exp_value", "exp_n", "exp_source", "error",
                                 "rel_error"]
    ns = par[(par["composition"] == "NS30") & (par["property"] == "density")].iloc[0]
    ref = float(_row(measured, "density", sio2=0.70, na2o=0.30)["value"].iloc[0])
    assert ns["md_mean"] == pytest.approx(2.42) and ns["md_std"] == pytest.approx(0.02)
    assert ns["n_replicas"] == 3 and ns["exp_value"] == pytest.approx(ref)
    assert ns["error"] == pytest.approx(2.42 - ref)
    assert ns["rel_error"] == pytest.approx((2.42 - ref) / ref)
    # silica density: one row per source (i-Melt and the reference)
    si = par[(par["composition"] == "silica") & (par["property"] == "density")]
    assert len(si) == 2 and set(si["exp_source"]) >= {"imelt"}
    # an MD property that was not looked up keeps NaN experiment columns
    cte = par[par["property"] == "cte"].iloc[0]
    assert np.isnan(cte["exp_value"]) and cte["exp_n"] == 0 and np.isnan(cte["md_std"])
    agg = md.groupby(["composition", "property", "potential"])["value"].agg(
        md_mean="mean", md_std="std", n_replicas="count").reset_index()
    pd.testing.assert_frame_equal(parity_table(agg, exp), par)
    with pytest.raises(ValueError, match="potential"):
        parity_table(md.drop(columns="potential"), exp)


def test_spearman_tg_on_a_measured_series(measured):
    # K2O-SiO2 glasses with measured Tg in i-Melt (Tg falls with K2O)
    series = {f"K{k}": {"SiO2": 100 - k, "K2O": k} for k in (11, 18, 20, 25, 34, 40)}
    exp = measured_table(series, measured, properties=("tg",))
    assert (exp["exp_n"] >= 1).all()
    tg = exp.set_index("composition")["exp_mean"]
    md = pd.DataFrame({"composition": list(series), "property": "tg", "potential": "pmmcs",
                       "value": [tg[c] + 250.0 + 3.0 * i for i, c in enumerate(series)]})
    par = parity_table(md, exp)
    # measured Tg steps between neighbours exceed the 3 K MD drift: the ranks agree
    assert tg.sort_values().diff().dropna().min() > 3.0
    res = spearman_tg(par)
    assert res["n"] == 6 and res["rho"] == pytest.approx(1.0) and res["p_value"] < 0.01
    flipped = par.assign(md_mean=-par["md_mean"])
    assert spearman_tg(flipped)["rho"] == pytest.approx(-res["rho"])
    assert np.isnan(spearman_tg(par.head(2))["rho"])
    two = pd.concat([par, par.assign(potential="shik")])
    with pytest.raises(ValueError, match="2 potentials"):
        spearman_tg(two)


def test_load_measured_from_the_ingest_table(tmp_path, measured):
    path = tmp_path / "properties.parquet"
    write_table(measured, path, {"source": "test"})
    back = load_measured(path, properties=("density",))
    assert set(back["property"]) == {"density"}
    assert len(back) == int((measured["property"] == "density").sum())
    write_table(measured.drop(columns=["cao"]), path, {})
    with pytest.raises(ValueError, match=r"properties.parquet: missing column\(s\) \['cao'\]"):
        load_measured(path)
    with pytest.raises(FileNotFoundError, match="nothere.parquet"):
        load_measured(tmp_path / "nothere.parquet")
