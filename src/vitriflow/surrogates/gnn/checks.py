"""Start-up checks of the ``gnn`` section (``vitriflow.config.load_config`` calls them while
Snakemake parses the workflow, so nothing heavy is imported)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitriflow.surrogates.checks import one_potential_family


def check_config(section: Mapping[str, Any], settings) -> list[str]:
    """The systems the GNN learns from (energies of different potentials are not comparable)."""
    return one_potential_family("gnn.systems", section["systems"], settings.systems,
                                "energies of different potentials are not comparable")
