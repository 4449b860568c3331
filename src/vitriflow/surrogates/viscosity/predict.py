"""Predictions for configured or command-line compositions: the table of the predict rule and
of ``vitriflow viscosity predict``, and the warning lines for compositions outside the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vitriflow.composition import SUM_TOLERANCE
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL, NEAREST_SUFFIX
from vitriflow.surrogates.viscosity.data import MAX_WAVELENGTH_UM
from vitriflow.surrogates.viscosity.features import OXIDES, oxide_matrix


def _amounts(c: Mapping, where: str) -> list[float]:
    """The six oxide amounts of one composition; they must sum to 1 (mole fractions) or 100
    (mol%), as compositions do everywhere in the config, so that a missing oxide is not
    silently made up by scaling the others."""
    amounts = [float(c.get(o, 0.0)) for o in OXIDES]
    oxide_matrix(np.array([amounts]), name=where)  # negative, non-finite, all zero
    total = sum(amounts)
    if abs(total - 1.0) > SUM_TOLERANCE and abs(total - 100.0) > 100.0 * SUM_TOLERANCE:
        raise ValueError(
            f"{where}: oxide amounts sum to {total:g}; expected 1 (mole fractions) or 100 (mol%)"
        )
    return amounts


def prediction_grid(
    compositions: Sequence[Mapping], temperatures, name: str = "viscosity.predict.compositions"
) -> tuple[pd.DataFrame, np.ndarray]:
    """(frame of label + oxides repeated over T, T array) for the predict rule. Labels name the
    rows (and the extrapolation warnings), so they must be distinct."""
    if not compositions:
        return pd.DataFrame(columns=["label", *OXIDES]), np.zeros(0)
    labels = [str(c.get("label", i)) for i, c in enumerate(compositions)]
    twice = sorted({lb for lb in labels if labels.count(lb) > 1})
    if twice:
        raise ValueError(
            f"{name}: label(s) {twice} used more than once; expected one label per composition"
        )
    comp = pd.DataFrame(
        [
            _amounts(c, f"{name}[{i}] ({label})")
            for i, (c, label) in enumerate(zip(compositions, labels, strict=True))
        ],
        columns=list(OXIDES),
    )
    x = oxide_matrix(comp, name=name)
    T = np.asarray(list(temperatures), float)
    if T.size == 0 or not (T > 0).all():
        raise ValueError(
            "viscosity.predict.temperatures_K: expected a non-empty list of positive K"
        )
    frame = pd.DataFrame(np.repeat(x, T.size, axis=0), columns=list(OXIDES))
    frame.insert(0, "label", np.repeat(labels, T.size))
    return frame, np.tile(T, len(labels))


def predict_compositions(
    model,
    compositions: Sequence[Mapping],
    temperatures,
    wavelength_um: float = 0.5893,
    name: str = "viscosity.predict.compositions",
) -> pd.DataFrame:
    """Every property of a fitted ``ViscositySurrogate`` for each {label, oxide: amount}
    composition at every temperature (K)."""
    if not 0 < wavelength_um <= MAX_WAVELENGTH_UM:
        raise ValueError(
            f"wavelength {wavelength_um:g}: expected micrometres in "
            f"(0, {MAX_WAVELENGTH_UM:g}] (the sodium D line is 0.5893; a number in "
            "nm is 1000x too large)"
        )
    frame, T = prediction_grid(compositions, temperatures, name)
    if not len(frame):
        return frame
    out = model.predict(frame.drop(columns="label"), T=T, wavelength_um=wavelength_um)
    out.insert(0, "label", frame["label"].to_numpy())
    return out


def extrapolation_warnings(pred: pd.DataFrame) -> list[str]:
    """One line per composition that lies farther than DOMAIN_WARN_MOL from every training melt
    of some property (the ``<property>_nearest_mol`` columns of the predictions)."""
    cols = [c for c in pred.columns if c.endswith(NEAREST_SUFFIX)]
    lines = []
    for label, g in pred.groupby("label", sort=False):
        far = {
            c.removesuffix(NEAREST_SUFFIX): g[c].iloc[0]
            for c in cols
            if g[c].iloc[0] > DOMAIN_WARN_MOL
        }
        if far:
            lines.append(
                f"warning: {label}: outside the training data (mol% to the nearest "
                "training melt: "
                + ", ".join(f"{k} {v:.0f}" for k, v in far.items())
                + f"); beyond {DOMAIN_WARN_MOL:g} mol% treat its predictions as "
                "extrapolations (docs/viscosity.md, 'Applicability domain')"
            )
    return lines
