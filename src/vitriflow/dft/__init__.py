"""DFT comparison of the MLIP's amorphous energies (Aykol et al. 2023, Table 1 / Fig. 4).

Modules: ``selection`` (which structures), ``gpaw_backend`` / ``vasp_backend`` / ``table_backend``
(where DFT energies come from), ``mlip`` (MLIP single points on the same frames), ``compare``
(formation energies, ΔE_am, error tables, affine correction), ``chemistry`` (Table 1 classes),
``report`` (the 50_dft report fragment). GPAW and VASP are optional: imports are lazy.
"""

from vitriflow.dft.checks import BACKENDS, TABLE_SUFFIXES, check_dft_config

__all__ = ["BACKENDS", "TABLE_SUFFIXES", "check_dft_config"]
