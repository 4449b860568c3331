"""Checks of the ``pcf`` config block that need the rest of the config (run at workflow start).

The schema checks each key alone; what it cannot see (a default model that is not trained, a
family mixing potentials) would otherwise surface only inside the ``pcf_train`` job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.surrogates.pcf.models import KINDS


def check_pcf_config(pcf: Mapping[str, Any], systems: Mapping[str, Any]) -> list[str]:
    """The systems of the PCF family (``pcf.systems``, or every system when empty).

    ``systems``: name -> spec with a ``potential`` (``vitriflow.config.SystemSpec``). Raises
    ValueError naming the ``pcf.<key>`` and what was expected.
    """
    family = list(pcf.get("systems") or systems)
    unknown = [s for s in family if s not in systems]
    if unknown:
        raise ValueError(f"pcf.systems: {unknown} are not systems of this run (known: {list(systems)})")
    by_potential: dict[str, list[str]] = {}
    for s in family:
        by_potential.setdefault(systems[s].potential, []).append(s)
    if len(by_potential) > 1:
        hint = "" if pcf.get("systems") else " (empty = every system of the run: list one potential's systems)"
        raise ValueError(f"pcf.systems: the family mixes potentials {dict(sorted(by_potential.items()))}; "
                         f"expected systems of one potential, whose structures the surrogate learns{hint}")
    models = list(pcf.get("models", KINDS))
    default = pcf.get("default_model", "auto")
    if default != "auto" and default not in models:
        raise ValueError(f"pcf.default_model: {default!r} is not among pcf.models {models}; "
                         "expected 'auto' or one of the trained models")
    return family
