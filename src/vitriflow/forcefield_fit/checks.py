"""Start-up checks of ``forcefield_fit`` in a run: the reference resolved (a dataset of the
registry, the user's file, or the analysis rdf table of one of the run's systems) before the
fit's own checks (``vitriflow.forcefield_fit.space.check_config``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.config import ConfigError, data_file, thaw


def check_config(section: Mapping[str, Any], settings) -> dict[str, Any]:
    """``{"reference_path": path | None, "reason": str, "system": name | None}``: where the
    reference comes from; a fit whose reference data cannot be had is skipped with the reason."""
    from vitriflow.forcefield_fit.space import check_config as check_space

    ref = section["reference"]
    if ref["kind"] == "rdf_table":
        if ref["system"] is None:
            raise ConfigError("forcefield_fit.reference.system: kind rdf_table needs the system "
                              "of this run whose analysis rdf table is the reference")
        if not settings.enabled("analysis"):
            raise ConfigError("forcefield_fit.reference.kind: rdf_table needs the analysis stage "
                              "(an `analysis` section) for the rdf table of "
                              f"{ref['system']!r}")
        check_space(section, settings)
        return {"reference_path": f"results/analysis/{ref['system']}/rdf.parquet", "reason": "",
                "system": ref["system"]}
    found = data_file(ref["path"], "forcefield_fit.reference.path", settings)
    if found.path is None:
        return {"reference_path": None, "reason": found.reason, "system": None}
    resolved = thaw(section)
    resolved["reference"]["path"] = found.path
    if found.dataset is None:  # the user's file exists now: read and check it at start
        check_space(resolved, settings)
    return {"reference_path": found.path, "reason": "", "system": None}
