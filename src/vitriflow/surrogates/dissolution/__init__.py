"""Topology-informed dissolution-rate models (Liu et al., thesis Ch. 5; Hamilton NAS data).

A model is a named spec (features, target) fitted as a polynomial of degree p on min-max
normalised descriptors (Eq. 5-7) by least squares; p is chosen by grouped 10-fold
cross-validation inside the training set. Accuracy is RRMSE (Eq. 5-1: RMSE divided by the
absolute mean of the measured values) and RMSE, both on log10 rate in mol SiO2 cm^-2 s^-1.

Modules: ``topology`` (constraint counting), ``checks`` (start-up checks, torch-free), ``data``
(table reading and validation, descriptors), ``specs`` (model specs), ``models`` (estimators and
model cards' round trip), ``selection`` (grouped-CV selection inside a training set),
``evaluate`` (protocols and every table the evaluation job writes), ``predict`` (model cards,
predictions for user compositions), ``report`` (section 70, drawn from the tables). The names
below are imported on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TopologyError": "topology", "count_constraints": "topology", "closed_form_nas": "topology",
    "SUPPORTED_OXIDES": "topology", "MODIFIER_OXIDES": "topology",
    "check_config": "checks",
    "RATE_COLUMN": "data", "DissolutionDataError": "data", "composition_descriptors": "data",
    "describe": "data", "load_table": "data", "ph_branches": "data", "read_raw_table": "data",
    "validate_table": "data",
    "BUILTIN_MODELS": "specs", "ModelSpec": "specs", "resolve_models": "specs",
    "AnovaGPRateModel": "models", "EnsembleRateModel": "models", "MixedRateModel": "models",
    "PolynomialRateModel": "models", "model_from_card": "models", "rmse": "models",
    "rrmse": "models",
    "DEFAULT_GLASS_ALPHAS": "selection", "fit_fixed_degree": "selection",
    "fit_with_cv": "selection", "grouped_folds": "selection", "select_degree": "selection",
    "TABLES": "evaluate", "distinct_grouped_splits": "evaluate",
    "evaluate_extrapolation": "evaluate",
    "evaluate_grouped": "evaluate", "family_masks": "evaluate", "grouped_split": "evaluate",
    "markdown_table": "evaluate", "run_evaluation": "evaluate", "summary_table": "evaluate",
    "card_for": "predict", "model_card": "predict", "predict_from_file": "predict",
    "predict_inputs": "predict", "read_model_cards": "predict",
    "headline_card": "report", "report_parts": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
