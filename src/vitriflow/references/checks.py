"""Start-up checks of ``references``: which index the run will use, decided at DAG time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from vitriflow.config import ConfigError


def check_config(section: Mapping[str, Any], settings) -> dict[str, Any]:
    """``{"files": {role: path} | None, "note": str}``: the registry's Materials Project snapshot
    files when the source reads them and every one is available (cache, mirror or download),
    else None and why (the shipped subset serves instead). A forced ``snapshot`` without its
    data, or ``live`` without ``MP_API_KEY``, is refused in one line."""
    from vitriflow.datasets import locate
    from vitriflow.references.sources import SNAPSHOT_DATASETS

    source = section["source"]
    if source == "live" and not os.environ.get("MP_API_KEY"):
        # checked here, not only in the job, so a run cannot do its other stages first and then
        # stop at the references (jobs, on a cluster too, inherit the submitting environment)
        raise ConfigError("references.source: 'live' needs the MP_API_KEY environment variable, "
                          "which is not set (use 'auto' to fall back to the snapshot or the "
                          "subset)")
    if source in ("subset", "estimate", "live"):
        return {"files": None, "note": f"references.source is {source!r}"}
    if not section["snapshot"]:
        if source == "snapshot":
            raise ConfigError("references.source: 'snapshot' needs references.snapshot: true")
        return {"files": None, "note": "references.snapshot is false: the shipped subset serves"}
    data = settings.config["data"]
    located = {role: locate(key, data["cache_dir"], data["mirror"], data["download"])
               for role, key in SNAPSHOT_DATASETS.items()}
    missing = [loc for loc in located.values() if loc.path is None]
    if not missing:
        return {"files": {role: str(loc.path) for role, loc in located.items()},
                "note": "; ".join(sorted({loc.how.split(" ")[0] for loc in located.values()}))}
    if source == "snapshot":
        raise ConfigError(f"references.source: 'snapshot' needs the Materials Project snapshot: "
                          f"{missing[0].how}")
    return {"files": None, "note": f"the full Materials Project snapshot is not available "
                                   f"({missing[0].how}); the shipped subset serves"}
