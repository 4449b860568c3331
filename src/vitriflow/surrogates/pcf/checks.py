"""Start-up checks of the ``pcf`` section that need the rest of the config (a default model
that is not trained, a family mixing potentials), which would otherwise surface only inside
the ``pcf_train`` job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.surrogates.checks import one_potential_family


def check_config(section: Mapping[str, Any], settings) -> list[str]:
    """The systems of the PCF family; ValueError naming the ``pcf.<key>`` otherwise."""
    family = one_potential_family("pcf.systems", section["systems"], settings.systems,
                                  "whose structures the surrogate learns")
    models, default = list(section["models"]), section["default_model"]
    if default != "auto" and default not in models:
        raise ValueError(f"pcf.default_model: {default!r} is not among pcf.models {models}; "
                         "expected 'auto' or one of the trained models")
    return family
