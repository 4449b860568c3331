"""Partial and total radial distribution functions of periodic cells.

Pairs come from a vesin half neighbour list (C++, periodic images included, so ``r_max`` may
exceed half the cell width: such an r-range then also holds the correlations of the periodic
images, which is what an infinite periodic crystal or MD cell really has). Counts are binned
with one ``np.bincount`` per structure.

Normalisation (Faber–Ziman convention): for species a != b,
``g_ab(r) = n_ab(r) / (N_a N_b / V * dV(r))`` with ``n_ab`` the number of (i in a, j in b)
pairs in the shell of volume ``dV``; for a == b the ordered pair count (each unordered pair
twice) is divided by ``N_a (N_a - 1) / V * dV`` so an ideal gas gives g = 1 exactly on
average, whatever N_a. The total is ``g(r) = sum_ab c_a c_b g_ab(r)`` over ordered species
pairs (``c`` = atomic fractions), the weighting whose Fourier transform is the
composition-weighted S(Q).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RDF",
    "half_min_width",
    "pair_name",
    "rdf",
    "r_grid",
    "species_pairs",
]


def pair_name(a: str, b: str) -> str:
    """Pair label with the two symbols sorted alphabetically: ``pair_name('Si', 'O') == 'O-Si'``."""
    x, y = sorted((a, b))
    return f"{x}-{y}"


def species_pairs(symbols: Sequence[str]) -> list[tuple[str, str]]:
    """All unordered species pairs (sorted) of a set of element symbols."""
    species = sorted(set(symbols))
    return [(a, b) for i, a in enumerate(species) for b in species[i:]]


def r_grid(r_max: float, dr: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and centres of the common r-grid [0, r_max] with width dr."""
    if not (r_max > 0 and dr > 0):
        raise ValueError("analysis.r_max/dr: expected positive numbers, got "
                         f"r_max={r_max}, dr={dr}")
    n = int(round(r_max / dr))
    if n < 2 or abs(n * dr - r_max) > 1e-6 * r_max:
        raise ValueError(
            f"analysis.r_max/dr: r_max={r_max} must be a whole number (>= 2) of bins of dr={dr}"
        )
    edges = np.linspace(0.0, n * dr, n + 1)
    return edges, 0.5 * (edges[1:] + edges[:-1])


def half_min_width(cell: np.ndarray) -> float:
    """Half the smallest perpendicular width of a cell (the largest image-free r)."""
    cell = np.asarray(cell, dtype=float)
    vol = abs(np.linalg.det(cell))
    widths = [
        vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)
    ]
    return 0.5 * float(min(widths))


@dataclass
class RDF:
    """Partial g_ab(r) of one structure (or an average) on a common grid."""

    r: np.ndarray  # bin centres, Å
    edges: np.ndarray
    partials: dict[str, np.ndarray]  # "O-Si" -> g(r)
    total: np.ndarray
    counts: dict[str, int]  # atoms per species
    volume: float  # Å^3

    @property
    def concentrations(self) -> dict[str, float]:
        n = sum(self.counts.values())
        return {el: c / n for el, c in self.counts.items()}

    @property
    def number_density(self) -> float:
        """Atoms per Å^3."""
        return sum(self.counts.values()) / self.volume

    def as_dict(self) -> dict[str, np.ndarray]:
        return {**self.partials, "total": self.total}


def _pairs(atoms, r_max: float):
    """Half neighbour list (i, j, d) with periodic images up to r_max (vesin)."""
    from vesin import NeighborList

    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.all():
        raise ValueError(f"rdf: expected a fully periodic cell, got pbc={pbc.tolist()}")
    nl = NeighborList(cutoff=float(r_max), full_list=False)
    i, j, d = nl.compute(
        np.ascontiguousarray(atoms.positions, dtype=float),
        np.ascontiguousarray(atoms.cell[:], dtype=float),
        True,
        "ijd",
    )
    return i, j, d


def rdf(atoms, r_max: float, dr: float, species: Sequence[str] | None = None) -> RDF:
    """Partial and total g(r) of one periodic structure.

    ``species`` fixes the set of pairs reported (pairs of absent species are all-zero and
    excluded from the total); by default the species present in ``atoms``.
    """
    edges, centres = r_grid(r_max, dr)
    r_cut = edges[-1]
    symbols = np.asarray(atoms.get_chemical_symbols())
    present = sorted(set(symbols.tolist()))
    species = sorted(set(species) if species is not None else present)
    missing = set(present) - set(species)
    if missing:
        raise ValueError(f"rdf: atoms contain {sorted(missing)} not in species={species}")
    volume = float(abs(atoms.get_volume()))
    if volume <= 0:
        raise ValueError("rdf: cell volume is zero; expected a periodic cell")
    s_index = {el: k for k, el in enumerate(species)}
    types = np.array([s_index[s] for s in symbols], dtype=np.int64)
    n_sp = len(species)
    counts = np.bincount(types, minlength=n_sp)

    # unordered species-pair index for every (ta, tb) combination
    pairs = species_pairs(species)
    pair_idx = np.full((n_sp, n_sp), -1, dtype=np.int64)
    for k, (a, b) in enumerate(pairs):
        pair_idx[s_index[a], s_index[b]] = pair_idx[s_index[b], s_index[a]] = k

    i, j, d = _pairs(atoms, r_cut)
    keep = d < r_cut
    i, j, d = i[keep], j[keep], d[keep]
    bins = np.minimum((d / dr).astype(np.int64), len(centres) - 1)
    pk = pair_idx[types[i], types[j]]
    hist = np.bincount(pk * len(centres) + bins, minlength=len(pairs) * len(centres))
    hist = hist.reshape(len(pairs), len(centres)).astype(float)

    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    n_tot = counts.sum()
    partials: dict[str, np.ndarray] = {}
    total = np.zeros_like(centres)
    for k, (a, b) in enumerate(pairs):
        na, nb = counts[s_index[a]], counts[s_index[b]]
        name = pair_name(a, b)
        if a == b:
            norm = na * (na - 1) / volume * shell
            ordered = 2.0 * hist[k]
        else:
            norm = na * nb / volume * shell
            ordered = hist[k]
        g = ordered / norm if norm[0] > 0 else np.zeros_like(centres)
        partials[name] = g
        weight = (na / n_tot) * (nb / n_tot) * (1.0 if a == b else 2.0)
        total += weight * g
    return RDF(
        r=centres, edges=edges, partials=partials, total=total,
        counts={el: int(counts[s_index[el]]) for el in species}, volume=volume,
    )


def average_rdf(rdfs: Sequence[RDF]) -> RDF:
    """Mean g_ab(r) of several frames of one structure (same atoms, same grid): the structure
    averaged over a trajectory. The volume is the mean volume (it changes under NPT)."""
    first = rdfs[0]
    if len(rdfs) == 1:
        return first
    return RDF(r=first.r, edges=first.edges,
               partials={k: np.mean([g.partials[k] for g in rdfs], axis=0) for k in first.partials},
               total=np.mean([g.total for g in rdfs], axis=0), counts=dict(first.counts),
               volume=float(np.mean([g.volume for g in rdfs])))
