"""DFT comparison of the MLIP's amorphous energies (Aykol et al. 2023, Table 1 / Fig. 4).

Modules: ``selection`` (which structures), ``gpaw_backend`` / ``vasp_backend`` / ``table_backend``
(where DFT energies come from), ``mlip`` (MLIP single points on the same frames), ``compare``
(formation energies, ΔE_am, error tables, affine correction), ``chemistry`` (Table 1 classes),
``report`` (the 50_dft report fragment). GPAW and VASP are optional: imports are lazy.
"""

from collections.abc import Mapping
from pathlib import Path

BACKENDS = ("gpaw", "vasp", "table")
TABLE_SUFFIXES = (".csv", ".txt", ".parquet")


def check_dft_config(dft: Mapping) -> None:
    """What the schema cannot say, checked at workflow start (``dft.smk``) and by the stages.

    Raises ValueError with one line naming the key and what was expected.
    """
    if dft.get("backend") != "table":
        return
    path = (dft.get("table") or {}).get("path")
    expected = "a CSV or Parquet file of DFT energies (docs/dft.md)"
    if not path:
        raise ValueError(f"dft.table.path: required when dft.backend is 'table'; expected {expected}")
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"dft.table.path: {path!r} must end in .csv or .parquet; expected {expected}")
    if not Path(path).is_file():
        raise ValueError(f"dft.table.path: {path!r} does not exist; expected {expected}")
