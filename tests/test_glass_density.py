"""Glass density model: textbook glasses, held-out i-Melt rows, input handling, end-members."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vitriflow import glass_density as gd

# Reference densities (g/cm3, room temperature). Sources:
# - vitreous silica 2.20: Encyclopaedia Britannica, "Industrial glass - physical properties",
#   table "Properties of oxide glasses"; i-Melt's five pure-SiO2 rows give 2.200-2.2035.
# - the others: the i-Melt NKCMAS compilation of published measurements (package
#   imelt 2.2.0 on PyPI, by Le Losq, Baldoni & Valentine), rows within 0.6 mol% of the formula:
#   Na2O.3SiO2 2.427-2.443 (7 rows), Na2O.2SiO2 2.4825-2.483 (3), NaAlSi3O8 2.3685-2.370 (3),
#   CaAl2Si2O8 2.690 and 2.698, K2O.3SiO2 2.412-2.430 (7). The values usually quoted (2.40-2.44,
#   2.49-2.50, 2.38, 2.70, ~2.40) agree; their primary papers were not reachable offline.
# These compositions are in the fitting data: this checks the shipped constants, not a hold-out
# (that is test_refit_on_train_split_predicts_test_split). Tolerance 0.02 g/cm3 is about the
# standard error of Fluegel's global density model (J. Am. Ceram. Soc. 90:2622, 2007), the
# scatter between laboratories; silica gets the 1 % the structure stage needs.
TEXTBOOK = [
    ("vitreous SiO2", {"SiO2": 1}, 2.20, 0.01 * 2.20),
    ("Na2O.3SiO2", {"Na2O": 1, "SiO2": 3}, 2.43, 0.02),
    ("Na2O.2SiO2", {"Na2O": 1, "SiO2": 2}, 2.49, 0.02),
    ("albite NaAlSi3O8", {"Na2O": 0.5, "Al2O3": 0.5, "SiO2": 3}, 2.38, 0.02),
    ("anorthite CaAl2Si2O8", {"CaO": 1, "Al2O3": 1, "SiO2": 2}, 2.70, 0.02),
    ("K2O.3SiO2", {"K2O": 1, "SiO2": 3}, 2.42, 0.025),
]

# Held-out bound (g/cm3). Fluegel's model reproduces 6719 literature glasses with a standard
# error of 0.019; i-Melt's test slice also holds one K2O-SiO2 row (30.4 mol% K2O, 2.337) that
# lies ~0.11 below its neighbours in the same table and alone adds 0.013 in quadrature. A sound
# model therefore lands near 0.023; 0.030 leaves margin for the smaller training set, while
# the purely additive model (0.078) or dropping the excess-Al2O3 term (0.041) fail it.
TEST_RMSE_BOUND = 0.030


@pytest.fixture(scope="module")
def imelt_density() -> pd.DataFrame:
    from vitriflow.surrogates.viscosity.data import load_imelt, validate

    good, _ = validate(load_imelt(properties=("density",)))
    return good


def _rmse(model, df) -> float:
    return float(np.sqrt(np.mean((model.predict(df) - df["value"].to_numpy()) ** 2)))


@pytest.mark.parametrize(("name", "oxides", "ref", "tol"), TEXTBOOK, ids=[t[0] for t in TEXTBOOK])
def test_textbook_glasses(name, oxides, ref, tol):
    assert gd.density_g_cm3(oxides) == pytest.approx(ref, abs=tol), name


def test_refit_on_train_split_predicts_test_split(imelt_density):
    train = imelt_density[imelt_density["split"] == "train"]
    test = imelt_density[imelt_density["split"] == "test"]
    shipped = gd.shipped_model()
    model = gd.GlassDensityModel(terms=shipped.terms, ridge=gd.SHIPPED_RIDGE,
                                 huber_g_cm3=gd.SHIPPED_HUBER_G_CM3, fixed=gd.SILICA_PIN)
    model.fit(train, train["value"])
    assert _rmse(model, test) < TEST_RMSE_BOUND
    # the bound discriminates: the additive model on the same rows does not meet it
    additive = gd.GlassDensityModel(huber_g_cm3=None).fit(train, train["value"])
    assert _rmse(additive, test) > TEST_RMSE_BOUND


def test_shipped_coefficients_are_the_train_valid_fit(imelt_density):
    tv = imelt_density[imelt_density["split"].isin(["train", "valid"])]
    shipped = gd.shipped_model()
    refit = gd.GlassDensityModel(terms=shipped.terms, ridge=gd.SHIPPED_RIDGE,
                                 huber_g_cm3=gd.SHIPPED_HUBER_G_CM3, fixed=gd.SILICA_PIN)
    refit.fit(tv, tv["value"])
    for k, v in refit.coefficients().items():
        assert v == pytest.approx(gd.SHIPPED_COEFFICIENTS[k], abs=1e-3), k


def test_case_insensitive_keys_and_mol_percent():
    a = gd.density_g_cm3({"SiO2": 0.75, "Na2O": 0.25})
    assert gd.density_g_cm3({"sio2": 75, "NA2O": 25}) == pytest.approx(a, rel=1e-12)
    assert gd.covers({"sio2": 75, "NA2O": 25})


@pytest.mark.parametrize(("bad", "needle"), [
    ({"SiO2": 0.7, "B2O3": 0.3}, "'B2O3'"),
    ({"SiO2": 0.7, "Na2O": -0.1}, "'Na2O'"),
    ({"SiO2": 0.7, "CaO": float("nan")}, "'CaO'"),
    ({"SiO2": 0.7, "K2O": float("inf")}, "'K2O'"),
    ({"SiO2": 0.7, "MgO": "a lot"}, "'MgO'"),
    ({"SiO2": 0.7, "sio2": 0.3}, "SiO2"),
    ({"SiO2": 0.0}, "zero"),
    ({}, "non-empty"),
])
def test_bad_input_is_one_line_value_error(bad, needle):
    for fn in (gd.density_g_cm3, gd.molar_volume_cm3, gd.volume_per_atom_A3):
        with pytest.raises(ValueError) as exc:
            fn(bad)
        msg = str(exc.value)
        assert needle in msg and "\n" not in msg
    assert not gd.covers(bad)


def test_volume_per_atom_matches_density():
    comp = {"Na2O": 16, "CaO": 10, "SiO2": 74}
    x = np.array([0.74, 0, 0.16, 0, 0, 0.10])
    mass_per_atom_g = (x @ np.array(list(gd.MOLAR_MASS_G_MOL.values()))) / (
        x @ np.array(list(gd.ATOMS_PER_FORMULA.values()))) / gd.AVOGADRO
    rho = mass_per_atom_g / (gd.volume_per_atom_A3(comp) * 1e-24)
    assert rho == pytest.approx(gd.density_g_cm3(comp), rel=1e-12)
    # silica: 60.08 g/mol / 2.20 g/cm3 over 3 atoms -> 15.12 A^3 per atom
    assert gd.volume_per_atom_A3({"SiO2": 1}) == pytest.approx(15.12, abs=0.01)


def test_vectorised_predict_matches_scalar_calls():
    df = pd.DataFrame({"SIO2": [0.75, 0.5, 1.0], "Al2O3": [0.125, 0.25, 0.0],
                       "na2o": [0.125, 0.0, 0.0], "k2o": [0, 0, 0], "mgo": [0, 0, 0],
                       "cao": [0.0, 0.25, 0.0], "label": ["ab", "an", "silica"]})
    got = gd.predict(df)
    want = [gd.density_g_cm3(r) for r in df.drop(columns="label").to_dict("records")]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(gd.predict_molar_volume(df) * got,
                               df.drop(columns="label").to_numpy(float)
                               @ np.array(list(gd.MOLAR_MASS_G_MOL.values())), rtol=1e-12)
    with pytest.raises(ValueError, match="lacks oxide columns"):
        gd.predict(df.drop(columns="cao"))


def test_finite_over_the_whole_simplex():
    rng = np.random.default_rng(0)
    x = np.vstack([np.eye(6), rng.dirichlet(np.full(6, 0.3), size=5000)])
    v = gd.predict_molar_volume(x)
    rho = gd.predict(x)
    assert np.isfinite(v).all() and (v > 0).all()
    assert ((rho > 1.5) & (rho < 5.0)).all()


def test_calibration_box_is_the_data_range(imelt_density):
    got = {o: float(imelt_density[o.lower()].max()) for o in gd.OXIDES}
    for o, v in got.items():
        assert gd.CALIBRATION_MAX[o] == pytest.approx(v, abs=1e-3), o
    assert gd.within_calibration({"Na2O": 1, "SiO2": 2})
    assert not gd.within_calibration({"MgO": 0.8, "SiO2": 0.2})


def test_alkali_silicate_density_rises_with_alkali():
    rho = [gd.density_g_cm3({"SiO2": 100 - n, "Na2O": n}) for n in range(0, 45, 5)]
    assert np.all(np.diff(rho) > 0)


def test_model_rejects_unknown_terms_and_unfitted_use():
    with pytest.raises(ValueError, match="unknown"):
        gd.GlassDensityModel(terms=("SiO2*B2O3",))
    with pytest.raises(ValueError, match="not fitted"):
        gd.GlassDensityModel().predict(np.eye(6))


def test_module_is_torch_free():
    code = "import sys, vitriflow.glass_density as g; g.density_g_cm3({'SiO2': 1}); " \
           "sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
