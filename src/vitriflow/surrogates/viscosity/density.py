"""Density prior of the surrogate: the partial-molar-volume glass-density model of
``vitriflow.glass_density`` (additive oxide volumes with the non-linear terms for Al2O3 and
modifier mixing), refitted on the training densities of each fit so that no held-out glass ever
shapes it. With ``density_prior="pmv"`` the network's molar volume is this prior volume times
exp(sum_i x_i (1 - x_i) z_i): the network learns only an excess-volume correction, which starts
near zero and vanishes at every end-member (vitreous silica stays at its pinned 2.20 g/cm3)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from vitriflow.surrogates.viscosity.features import OXIDES

log = logging.getLogger("vitriflow.surrogates.viscosity")


def fit_prior(rows: pd.DataFrame) -> dict[str, float]:
    """Coefficients of the partial-molar-volume model (the shipped term set, ridge and Huber
    threshold, V_SiO2 pinned to vitreous silica) fitted on the density ``rows``; the shipped
    coefficients when the rows cannot determine them (a group that trains no density, or
    densities without some oxide)."""
    from vitriflow import glass_density as gd

    rows = rows[rows["property"] == "density"]
    terms = tuple(k for k in gd.SHIPPED_COEFFICIENTS if not k.startswith("V_"))
    absent = [o for o in OXIDES if not (rows[o] > 0).any()]
    if len(rows) < 3 * (6 + len(terms)) or absent:
        if len(rows):
            log.warning("density prior: %d training densities%s; using the shipped "
                        "partial-molar-volume coefficients", len(rows),
                        f" without {absent}" if absent else "")
        return dict(gd.SHIPPED_COEFFICIENTS)
    model = gd.GlassDensityModel(terms=terms, ridge=gd.SHIPPED_RIDGE,
                                 huber_g_cm3=gd.SHIPPED_HUBER_G_CM3, fixed=dict(gd.SILICA_PIN))
    return model.fit(rows.loc[:, list(OXIDES)].to_numpy(float), rows["value"].to_numpy(float)
                     ).coefficients()


def prior_volume(coefficients: dict[str, float], x: np.ndarray) -> np.ndarray:
    """(n, 1) float32 molar volumes (cm3/mol) of the model with ``coefficients`` for mole
    fractions ``x`` (n, 6)."""
    from vitriflow import glass_density as gd

    model = gd.GlassDensityModel.from_coefficients(coefficients)
    return model.molar_volume(np.asarray(x, float)).reshape(-1, 1).astype(np.float32)


def prior_density(coefficients: dict[str, float], x: np.ndarray) -> np.ndarray:
    """Densities (g/cm3) of the prior alone, for reporting it beside the network."""
    from vitriflow import glass_density as gd

    return gd.GlassDensityModel.from_coefficients(coefficients).predict(np.asarray(x, float))
