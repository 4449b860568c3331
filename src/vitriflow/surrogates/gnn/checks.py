"""Checks of the ``gnn`` config block that need the rest of the config (run at workflow start).

The schema checks each key alone; what it cannot see (a system that is not in the run, a family
mixing potentials) would otherwise surface only inside the ``gnn_train`` job. Imports nothing
heavy: gnn.smk calls it while Snakemake parses the workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_gnn_config(gnn: Mapping[str, Any], systems: Mapping[str, Any]) -> list[str]:
    """The systems the GNN learns from (``gnn.systems``, or every system when empty).

    ``systems``: name -> spec with a ``potential`` (``vitriflow.config.SystemSpec``). Raises
    ValueError naming ``gnn.systems`` and what was expected: systems of this run, of one
    potential (energies of different potentials are not comparable).
    """
    family = list(gnn.get("systems") or systems)
    unknown = [s for s in family if s not in systems]
    if unknown:
        raise ValueError(f"gnn.systems: {unknown} are not systems of this run (known: {list(systems)})")
    potentials = sorted({systems[s].potential for s in family})
    if len(potentials) > 1:
        raise ValueError(f"gnn.systems: {family} use potentials {potentials}; expected one "
                         "(energies of different potentials are not comparable)")
    return family
