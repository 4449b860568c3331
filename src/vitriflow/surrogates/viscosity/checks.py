"""Start-up checks of the ``viscosity`` section (torch-free): the preset file and the model
overrides, the compositions to predict and the user data tables, so that a typo or a bad file
stops the run before any job instead of after minutes of training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.surrogates.viscosity.data import check_user_csv
from vitriflow.surrogates.viscosity.options import check_options, validate_options
from vitriflow.surrogates.viscosity.predict import prediction_grid
from vitriflow.surrogates.viscosity.presets import estimator_params, load_preset, preset_path


def check_config(section: Mapping[str, Any], settings=None) -> dict[str, str]:
    """{'preset': path of the preset file}; ValueError naming the key or file otherwise."""
    path = preset_path(section)
    try:
        preset = load_preset(path)
    except ValueError as exc:
        raise ValueError(f"viscosity.mode: {exc}") from None
    validate_options(section["model"], where="viscosity.model")
    merged = estimator_params(section, preset)
    check_options(merged, where="viscosity.model" if section["model"] else str(path))
    predict = section["predict"]
    prediction_grid(predict["compositions"], predict["temperatures_K"])
    for i, csv in enumerate(section["user_data"]):
        try:
            check_user_csv(csv)
        except (OSError, ValueError) as exc:
            raise ValueError(f"viscosity.user_data[{i}]: {exc}") from None
    return {"preset": str(path)}
