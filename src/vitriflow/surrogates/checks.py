"""Start-up checks shared by the surrogates that learn from the pipeline's own structures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def one_potential_family(key: str, requested: Sequence[str], systems: Mapping[str, Any],
                         why: str) -> list[str]:
    """The systems a surrogate learns from: ``requested``, or every system of the run when it
    is empty. Refuses (ValueError naming ``key``) unknown systems and a family that mixes
    potentials, whose structures and energies are not comparable (``why``)."""
    family = list(requested or systems)
    unknown = [s for s in family if s not in systems]
    if unknown:
        raise ValueError(f"{key}: {unknown} are not systems of this run (known: {list(systems)})")
    by_potential: dict[str, list[str]] = {}
    for s in family:
        by_potential.setdefault(systems[s].potential, []).append(s)
    if len(by_potential) > 1:
        hint = ("" if requested
                else " (empty = every system of the run: list one potential's systems)")
        raise ValueError(f"{key}: the family mixes potentials "
                         f"{dict(sorted(by_potential.items()))}; expected systems of one potential "
                         f"({why}){hint}")
    return family
