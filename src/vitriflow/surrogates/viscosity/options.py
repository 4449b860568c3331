"""The surrogate's hyper-parameters: checked against ``schemas/viscosity_preset.schema.yaml``
(types and ranges, written once there) plus the rules that span keys (task groups partition the
properties, the viscosity equations' properties share a group, each group early-stops on
something it trains). Torch-free: the workflow runs it at start-up, the estimator when it fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from vitriflow.surrogates.viscosity.data import PROPERTIES

# noise scale per task (same units as the property): the loss is sum_task MSE / sigma^2
DEFAULT_SIGMAS: dict[str, float] = {
    "viscosity": 0.25,
    "tg": 10.0,
    "sconf_tg": 0.5,
    "density": 0.02,
    "refractive_index": 0.004,
    "liquidus": 40.0,
    "elastic_modulus": 6.0,
    "cte": 2.0,
    "abbe_number": 3.0,
    "cp_liquid": 4.0,
}
REFRACTIVE_INDEX_LAWS = ("sellmeier", "lorentz_lorenz")
# properties whose values come from the viscosity equations' own parameters
VISCOSITY_GROUP = ("viscosity", "tg", "sconf_tg", "cp_liquid")
GROUP_KEYS_FIXED = ("task_groups", "seed", "device", "n_jobs")  # one value for every group
SCHEMA = "viscosity_preset"


def _key(where: str, path: Sequence[Any]) -> str:
    """'viscosity.model' + ['task_groups', 1, 'lr'] -> 'viscosity.model.task_groups[1].lr'."""
    out = where
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "parameters"


def _non_finite(node: Any, path: tuple = ()) -> tuple | None:
    if isinstance(node, float) and not math.isfinite(node):
        return path
    items = (
        node.items()
        if isinstance(node, Mapping)
        else (enumerate(node) if isinstance(node, list | tuple) else ())
    )
    for k, v in items:
        found = _non_finite(v, (*path, k))
        if found is not None:
            return found
    return None


def validate_options(params: Mapping[str, Any], where: str = "") -> None:
    """Types and ranges of ``params`` (a preset, ``viscosity.model`` overrides or an
    estimator's ``get_params()``); ValueError naming the key otherwise."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    from vitriflow.config import load_schema, thaw

    plain = thaw(params)
    bad = _non_finite(plain)
    if bad is not None:
        raise ValueError(f"{_key(where, bad)}: not a finite number")
    error = best_match(Draft202012Validator(load_schema(SCHEMA)).iter_errors(plain))
    if error is not None:
        raise ValueError(f"{_key(where, error.absolute_path)}: {error.message}")


def sigmas(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The per-task loss scales: ``DEFAULT_SIGMAS`` with ``overrides`` applied."""
    s = dict(DEFAULT_SIGMAS)
    for k, v in (overrides or {}).items():
        if k not in s:
            raise ValueError(f"sigmas: unknown property {k!r}; expected one of {sorted(s)}")
        if not v > 0:
            raise ValueError(f"sigmas.{k}: expected a positive number, got {v!r}")
        s[k] = float(v)
    return s


def group_options(
    params: Mapping[str, Any], where: str = ""
) -> list[tuple[list[str], list[str], dict]]:
    """(properties, auxiliary properties, that group's full parameters) for each entry of
    ``params["task_groups"]``, after the checks that span groups; ValueError naming the key."""
    groups, seen = [], {}
    base = {k: v for k, v in params.items() if k != "task_groups"}
    for i, g in enumerate(params["task_groups"]):
        at = _key(where, ["task_groups", i])
        props = list(g["properties"])
        for prop in props:
            if prop in seen:
                raise ValueError(f"{at}.properties: {prop!r} is already in group {seen[prop]}")
            seen[prop] = i
        aux = list(g.get("auxiliary") or [])
        for prop in aux:
            if prop in props:
                raise ValueError(
                    f"{at}.auxiliary: {prop!r}; expected a property of another "
                    f"group (one of {sorted(set(PROPERTIES) - set(props))})"
                )
        over = {k: v for k, v in g.items() if k not in ("properties", "auxiliary")}
        merged = {**base, **over}
        stop = merged.get("early_stopping_on", "all")
        if stop not in ("all", *props, *aux):
            raise ValueError(
                f"{at}.early_stopping_on: {stop!r} is not trained by this group "
                f"{props + aux}; expected 'all' or one of them (set it per group)"
            )
        groups.append((props, aux, merged))
    missing = sorted(set(PROPERTIES) - set(seen))
    if missing:
        raise ValueError(
            f"{_key(where, ['task_groups'])}: properties {missing} are in no group; "
            "every property needs one"
        )
    if len({seen[p] for p in VISCOSITY_GROUP}) > 1:
        raise ValueError(
            f"{_key(where, ['task_groups'])}: {list(VISCOSITY_GROUP)} must be in one "
            "group (the viscosity equations are parameterised by Tg, Sconf(Tg) and Cp)"
        )
    return groups


def check_options(
    params: Mapping[str, Any], where: str = ""
) -> list[tuple[list[str], list[str], dict]]:
    """Every check of a full parameter set; the task groups (empty without groups)."""
    validate_options(params, where)
    return group_options(params, where) if params.get("task_groups") else []
