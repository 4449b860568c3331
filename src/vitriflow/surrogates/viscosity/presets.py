"""Hyper-parameter presets: ``config/viscosity/<mode>.yaml`` files checked against
``schemas/viscosity_preset.schema.yaml``, merged with the ``viscosity.model`` overrides into the
estimator's parameters. Torch-free."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vitriflow.surrogates.viscosity.options import check_options

SHIPPED_PRESETS = Path(__file__).resolve().parents[4] / "config" / "viscosity"


def preset_path(section: Mapping[str, Any]) -> Path:
    """The preset file the ``viscosity`` section names: ``<presets_dir>/<mode>.yaml``, or the
    project's ``config/viscosity/<mode>.yaml`` when ``presets_dir`` is null."""
    folder = section["presets_dir"]
    return (SHIPPED_PRESETS if folder is None else Path(folder)) / f"{section['mode']}.yaml"


def load_preset(path: str | Path) -> dict[str, Any]:
    """The estimator parameters of a preset file (its ``description`` dropped), checked;
    ValueError naming the file and the key otherwise."""
    path = Path(path)
    if not path.is_file():
        there = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ValueError(
            f"{path}: no such preset file; expected one of {there} in {path.parent}"
            if there
            else f"{path}: no such preset file (folder {path.parent} has none)"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping of estimator parameters, got {type(data).__name__}"
        )
    check_options(data, where=str(path))
    data.pop("description", None)
    return data


def estimator_params(section: Mapping[str, Any], preset: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of the section's estimator: the preset, the ``model`` overrides on top, and
    the section's seed (plain lists and dicts, as the estimator stores them)."""
    from vitriflow.config import thaw

    return {**thaw(preset), **thaw(section["model"]), "seed": int(section["seed"])}


def screening_params(
    preset: Mapping[str, Any],
    overrides: Sequence[str] = (),
    candidates: int | None = None,
    n_jobs: int = 1,
    group_overrides: Sequence[str] = (),
    group_properties: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Estimator parameters of a preset for the benchmarks: ``overrides`` are KEY=JSON
    strings for the top level, ``group_overrides`` for every task group that owns one of
    ``group_properties`` (all groups when None; a group's own key beats the top level);
    ``candidates`` trains that many members in every task group and keeps them all."""
    from vitriflow.config import thaw

    def parsed(items: Sequence[str]) -> dict[str, Any]:
        pairs = (item.partition("=") for item in items)
        return {key: json.loads(value) for key, _, value in pairs}

    params = {**thaw(preset), **parsed(overrides)}
    for group in params.get("task_groups") or []:
        if group_properties is None or set(group["properties"]) & set(group_properties):
            group.update(parsed(group_overrides))
    if candidates:
        params["n_models"] = params["n_candidates"] = candidates
        params["task_groups"] = [
            {**g, "n_models": candidates, "n_candidates": candidates}
            for g in params.get("task_groups") or []
        ] or None
    params["n_jobs"] = n_jobs
    check_options(params)
    return params
