"""Melt viscosity and glass-property surrogate (config key ``viscosity``; docs/viscosity.md).

A physics-guided bagged multitask network trained on i-Melt's NKCMAS database, compared row for
row with the pretrained i-Melt ensemble. Modules:

- ``checks``: start-up checks of the config section (torch-free);
- ``data``: the i-Melt database and user CSVs as one tidy, validated table; the property list;
- ``features``: oxide mole fractions, the 33 descriptors i-Melt derives from them and continuous
  charge-balance terms;
- ``options``, ``presets``: hyper-parameters, their checks and the YAML presets
  (``config/viscosity/*.yaml``);
- ``equations``, ``network``, ``tensors``, ``training``, ``estimator``: the model
  (:class:`ViscositySurrogate`);
- ``evaluate``: the i-Melt baseline on the same rows, RMSE with a paired bootstrap, coverage;
- ``predict``: the prediction table for given compositions and temperatures;
- ``report``: report section 60.

The names below are imported on first use, so ``checks`` loads no torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ViscositySurrogate": "estimator",
    "check_config": "checks",
    "ingest": "data",
    "ingest_raman": "data",
    "load_imelt": "data",
    "validate": "data",
    "PROPERTIES": "data",
    "target_name": "data",
    "OXIDES": "features",
    "estimator_params": "presets",
    "load_preset": "presets",
    "preset_path": "presets",
    "screening_params": "presets",
    "IMELT_REPORTED": "evaluate",
    "comparison_table": "evaluate",
    "domain_table": "evaluate",
    "imelt_predict_table": "evaluate",
    "rmse_difference": "evaluate",
    "rmse_table": "evaluate",
    "uncertainty_table": "evaluate",
    "extrapolation_warnings": "predict",
    "predict_compositions": "predict",
    "prediction_grid": "predict",
    "write_report": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
