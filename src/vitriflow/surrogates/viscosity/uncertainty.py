"""Calibration of the ensemble spread into a predictive sigma (``calibration`` parameter):

- ``valid``: sigma^2 = (a spread)^2 + b^2 fitted on the validation rows;
- ``oof``: the same plus a term growing with the distance to the training melts,
  (c nearest_mol)^2, fitted on composition-grouped out-of-fold predictions of train + valid
  (``folds.out_of_fold``: fold models of ``calibration_members`` networks with the estimator's
  other settings), then scaled by their split-conformal rank (``surrogates.calibration``) so
  that the central 95 % interval holds a new glass exchangeable with them with probability
  >= 95 %; the rows beyond DOMAIN_WARN_MOL (5 mol%) get their own, never narrower, factor.
  The validation melts are close to the training melts (median 1-2 mol%) and chose the
  early-stopping epochs; new glasses lie farther, and their errors grow with the distance;
- ``none``: the raw spread.

See ``vitriflow.surrogates.calibration`` for the noise model."""

from __future__ import annotations

import logging

import pandas as pd

from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL
from vitriflow.surrogates.viscosity.data import target_name
from vitriflow.surrogates.viscosity.folds import out_of_fold

log = logging.getLogger("vitriflow.surrogates.viscosity")
LEVEL = 0.95  # the interval the out-of-fold calibration is scaled to


def noise_models(pred: pd.DataFrame, distance: bool = False,
                 level: float | None = None) -> dict[str, dict]:
    """Noise model per target of a ``predict_table`` frame (targets with too few rows have
    none)."""
    models = {}
    for (prop, e), g in pred.groupby(["property", "equation"]):
        d = g["nearest_mol"] if distance else None
        m = cal.fit_noise_model(g["y_pred"] - g["y_true"], g["y_spread"], d, level=level,
                                far=DOMAIN_WARN_MOL if distance else None)
        if m is not None:
            models[target_name(prop, e)] = m
    return models


def calibrate(est, table: pd.DataFrame, checkpoint_dir=None) -> dict[str, dict]:
    """The noise models of fitted estimator ``est`` (one network group) by its ``calibration``;
    with 'oof' also sets ``est.oof_``, the out-of-fold predictions."""
    if est.calibration == "none":
        return {}
    if est.calibration == "valid":
        valid = table[table["split"] == "valid"]
        if valid.empty:
            return {}
        models = noise_models(est.predict_table(valid))
        log.info("uncertainty calibrated on the validation rows: %s", ", ".join(
            f"{k} a={m['a']:.2f} b={m['b']:.3g}" for k, m in models.items()))
        return models
    params = {**est.get_params(), "n_models": est.calibration_members or est.n_models,
              "n_candidates": None, "calibration": "none", "task_groups": None}
    est.oof_ = out_of_fold(lambda k: type(est)(**params), table, est.calibration_folds,
                           est.calibration_radius_mol, est.seed,
                           None if checkpoint_dir is None else checkpoint_dir / "oof", log)
    models = noise_models(est.oof_, distance=True, level=LEVEL)
    log.info("uncertainty calibrated on %d out-of-fold rows: %s", len(est.oof_), ", ".join(
        f"{k} a={m['a']:.2f} b={m['b']:.3g} c={m.get('c', 0):.3g} x{m.get('scale', 1):.2f}"
        f" (x{m.get('scale_far', m.get('scale', 1)):.2f} far)"
        for k, m in models.items()))
    return models
