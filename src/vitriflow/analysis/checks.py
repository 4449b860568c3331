"""Start-up checks of the ``analysis`` section that need code or the rest of the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.config import ConfigError, DataFile, data_file

DATA_KEYS = ("scattering_lengths", "experimental_fq")


def check_config(section: Mapping[str, Any], settings) -> dict[str, DataFile]:
    """Build the settings once (bin grid, Q range), resolve the data files (registry datasets or
    paths; what cannot be had falls back in the job, with the reason), and refuse cutoffs and
    angle triplets naming an element that no system of the run has."""
    from vitriflow.analysis.system import AnalysisSettings

    AnalysisSettings.from_config(section)
    files = {key: data_file(section[key], f"analysis.{key}", settings) for key in DATA_KEYS}
    elements = set().union(*(spec.elements() for spec in settings.systems.values()))
    named = [(f"analysis.cutoffs.{pair}", pair) for pair in section["cutoffs"]]
    named += [(f"analysis.angle_triplets[{i}]", t)
              for i, t in enumerate(section["angle_triplets"] or ())]
    for key, name in named:
        parts = name.split("-")
        unknown = [el for el in parts if el not in elements]
        if len(parts) not in (2, 3) or unknown:
            raise ConfigError(f"{key}: {name!r} names {unknown or 'no'} element(s) of this run; "
                              "expected 'A-B' (cutoffs) or 'A-B-C' (angles) with elements among "
                              f"{sorted(elements)}")
    return files
