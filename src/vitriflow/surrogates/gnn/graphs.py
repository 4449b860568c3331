"""Periodic atomic graphs of MD structures (vesin neighbour lists -> torch-geometric Data).

Every pair of atoms closer than ``cutoff_A`` is an edge in both directions, images across the
periodic boundaries included (vesin computes them; torch-geometric's radius_graph would miss
them). Edges carry Gaussian radial basis functions of the distance times a cosine envelope that
goes smoothly to zero at the cutoff, so an atom crossing the cutoff does not jump the output.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

MIN_CUTOFF_A = 1.0
MIN_VOLUME_A3 = 1e-6  # a flatter cell is degenerate: no neighbour list can be built in it


def rbf_expand(d: torch.Tensor, cutoff: float, n_rbf: int) -> torch.Tensor:
    """(n_edges,) distances -> (n_edges, n_rbf) Gaussian basis x cosine cutoff envelope."""
    centers = torch.linspace(0.0, cutoff, n_rbf, dtype=d.dtype)
    width = cutoff / max(n_rbf - 1, 1)
    envelope = 0.5 * (torch.cos(torch.pi * d / cutoff) + 1.0) * (d < cutoff)
    return torch.exp(-(((d[:, None] - centers) / width) ** 2)) * envelope[:, None]


def structure_problem(atoms, species: list[str] | None = None) -> str:
    """Why ``atoms`` cannot become a graph ("" when it can).

    No atoms, positions or cell not finite, a degenerate cell, not periodic in three directions,
    or (with ``species``) an unknown element."""
    if len(atoms) == 0:
        return "no atoms"
    if not np.isfinite(atoms.positions).all():
        return "positions are not finite (NaN or infinite)"
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    if not np.isfinite(cell).all():
        return "cell is not finite (NaN or infinite)"
    if not abs(np.linalg.det(cell)) > MIN_VOLUME_A3:
        return f"cell volume {abs(np.linalg.det(cell)):.3g} Å³ (degenerate cell)"
    if not atoms.pbc.all():
        return (f"not periodic in all three directions (pbc={atoms.pbc.tolist()}); "
                "expected an MD cell")
    if species is not None:
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
        if unknown:
            return f"elements {unknown} the model was not trained on (trained: {list(species)})"
    return ""


def neighbour_edges(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """(2, n_edges) int64 edge index i -> j and (n_edges,) distances under periodic boundaries."""
    from vesin import NeighborList

    if not atoms.pbc.all():
        raise ValueError(f"gnn: structure {atoms.info.get('structure_id', '?')} is not periodic in "
                         f"all three directions (pbc={atoms.pbc.tolist()}); expected an MD cell")
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, d = nl.compute(points=atoms.positions, box=atoms.cell[:], periodic=True, quantities="ijd")
    return np.vstack([i, j]).astype(np.int64), np.asarray(d, dtype=np.float64)


def element_fractions(atoms) -> dict[str, float]:
    counts = Counter(atoms.get_chemical_symbols())
    n = sum(counts.values())
    return {el: c / n for el, c in sorted(counts.items())}


def to_graph(atoms, species: list[str], cutoff: float, n_rbf: int, y: float | None = None):
    """One structure as a torch_geometric Data: species index per atom, RBF edge features."""
    from torch_geometric.data import Data

    problem = structure_problem(atoms, species)
    if problem:
        raise ValueError(f"gnn: structure {atoms.info.get('structure_id', '?')}: {problem}")
    symbols = atoms.get_chemical_symbols()
    index = {el: k for k, el in enumerate(species)}
    edge_index, dist = neighbour_edges(atoms, cutoff)
    g = Data(z=torch.tensor([index[s] for s in symbols], dtype=torch.long),
             edge_index=torch.from_numpy(edge_index),
             edge_attr=rbf_expand(torch.tensor(dist, dtype=torch.float32), cutoff, n_rbf),
             num_nodes=len(atoms))
    if y is not None:
        g.y = torch.tensor([[float(y)]], dtype=torch.float32)
    return g
