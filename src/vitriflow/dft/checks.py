"""Start-up checks of the ``dft`` section that need code or the rest of the config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

BACKENDS = ("gpaw", "vasp", "table")
TABLE_SUFFIXES = (".csv", ".txt", ".parquet")


def check_dft_config(dft: Mapping) -> None:
    """What the schema cannot say about the backend; one-line ValueError naming the key."""
    if dft["backend"] != "table":
        return
    path = dft["table"]["path"]
    expected = "a CSV or Parquet file of DFT energies (docs/dft.md)"
    if not path:
        raise ValueError("dft.table.path: required when dft.backend is 'table'; expected "
                         f"{expected}")
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"dft.table.path: {path!r} must end in .csv or .parquet; expected "
                         f"{expected}")
    if not Path(path).is_file():
        raise ValueError(f"dft.table.path: {path!r} does not exist; expected {expected}")


def check_config(section: Mapping[str, Any], settings) -> dict[str, Any]:
    """The systems compared with DFT and the seed; refuses unknown systems."""
    names = list(settings.systems)
    systems = list(section["systems"] or names)
    unknown = [s for s in systems if s not in settings.systems]
    if unknown:
        raise ValueError(f"dft.systems: unknown system {unknown[0]!r}; expected one of {names}")
    check_dft_config(section)
    seed = section["seed"] if section["seed"] is not None else settings.config["seed"]
    return {"systems": systems, "seed": seed}
