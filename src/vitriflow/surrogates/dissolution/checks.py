"""Start-up checks of the ``dissolution`` section (torch-free; ``vitriflow.config.load_config``
runs them at DAG time): everything the jobs would refuse later, the table included, in one line
naming the key, the file, the column or row and what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vitriflow.surrogates.dissolution.data import (
    RATE_COLUMN,
    DissolutionDataError,
    describe,
    load_table,
    row_condition,
)
from vitriflow.surrogates.dissolution.specs import resolve_models
from vitriflow.surrogates.dissolution.topology import SUPPORTED_OXIDES


def check_queries_and_models(section: Mapping[str, Any]) -> None:
    """What needs no table: model names, the predict model and pH measure, the predict inputs'
    compositions, and that the row queries are conditions on the columns a table has."""
    from vitriflow.surrogates.dissolution.predict import check_composition

    models = list(section["models"])
    resolve_models(models, section["custom_models"])
    ph_measures = list(section["ph_measures"])
    predict = section["predict"]
    if predict["model"] not in models:
        raise DissolutionDataError(
            f"dissolution.predict.model: {predict['model']!r} is not among dissolution.models "
            f"{models}; add it there or predict with one of them")
    if predict["ph_measure"] not in ph_measures:
        raise DissolutionDataError(
            f"dissolution.predict.ph_measure: {predict['ph_measure']!r} is not among "
            f"dissolution.ph_measures {ph_measures}")
    for i, item in enumerate(predict["inputs"]):
        check_composition(item["composition"], f"dissolution.predict.inputs[{i}].composition")
    oxides = pd.DataFrame(columns=list(SUPPORTED_OXIDES), dtype=float)
    if section["select"]:
        table = oxides.assign(pH_initial=[], pH_at_time_t=[], **{RATE_COLUMN: []})
        row_condition(table, section["select"], "dissolution.select")
    ext = section["extrapolation"]
    if ext["enabled"]:
        for key in ("train", "test"):
            row_condition(oxides, ext[key], f"dissolution.extrapolation.{key}")


def check_table(section: Mapping[str, Any], path: str) -> int:
    """Read and validate the table at ``path`` as the evaluation job will (columns, numbers,
    ranges, oxide sums, select, constraint counting of every glass, the extrapolation families
    and the grouped split); returns its number of rows after ``select``."""
    from vitriflow.surrogates.dissolution.evaluate import _split_groups, family_masks

    try:
        df = load_table(path, section)
        for ph_measure in section["ph_measures"]:
            frame = describe(df, ph_measure)
            if section["extrapolation"]["enabled"]:
                family_masks(frame, section["extrapolation"]["train"],
                             section["extrapolation"]["test"])
            _split_groups(frame["group"].to_numpy(), section["test_fraction"])
    except DissolutionDataError as exc:
        msg = str(exc)
        if not msg.startswith(("dissolution.", str(path), str(Path(path)))):
            msg = f"dissolution.table: {path}: {msg.removeprefix('dissolution table: ')}"
        elif not msg.startswith("dissolution."):
            msg = f"dissolution.table: {msg}"
        raise DissolutionDataError(msg) from None
    return len(df)


def check_config(section: Mapping[str, Any], settings) -> dict[str, Any]:
    """Check the defaulted ``dissolution`` section: ``{"skip_reason", "table", "rows"}``.

    The table is a dataset of the registry (``dissolution_hamilton``) or the user's file. A user
    file is read and validated now; a registry dataset is pinned by its sha256 and validated by
    the evaluation once fetched. The stage is skipped, with the reason and how to get the data,
    when it is switched off, has no table, or its data cannot be had (no cache, mirror or
    network; a user file whose folder is absent)."""
    from vitriflow.config import data_file

    if not section["enabled"]:
        return {"skip_reason": "dissolution.enabled is false in the config.", "table": None,
                "rows": None}
    check_queries_and_models(section)
    if not section["table"]:
        return {"skip_reason": "no dissolution table configured (dissolution.table is null).",
                "table": None, "rows": None}
    table = data_file(section["table"], "dissolution.table", settings)
    if table.path is None:
        return {"skip_reason": table.reason, "table": None, "rows": None}
    rows = check_table(section, table.path) if Path(table.path).is_file() else None
    return {"skip_reason": "", "table": table.path, "rows": rows}
