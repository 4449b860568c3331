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


def rbf_expand(d: torch.Tensor, cutoff: float, n_rbf: int) -> torch.Tensor:
    """(n_edges,) distances -> (n_edges, n_rbf) Gaussian basis x cosine cutoff envelope."""
    centers = torch.linspace(0.0, cutoff, n_rbf, dtype=d.dtype)
    width = cutoff / max(n_rbf - 1, 1)
    envelope = 0.5 * (torch.cos(torch.pi * d / cutoff) + 1.0) * (d < cutoff)
    return torch.exp(-(((d[:, None] - centers) / width) ** 2)) * envelope[:, None]


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

    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(species))
    if unknown:
        raise ValueError(f"gnn: structure {atoms.info.get('structure_id', '?')} has elements {unknown} "
                         f"the model was not trained on (trained: {species})")
    index = {el: k for k, el in enumerate(species)}
    edge_index, dist = neighbour_edges(atoms, cutoff)
    g = Data(z=torch.tensor([index[s] for s in symbols], dtype=torch.long),
             edge_index=torch.from_numpy(edge_index),
             edge_attr=rbf_expand(torch.tensor(dist, dtype=torch.float32), cutoff, n_rbf),
             num_nodes=len(atoms))
    if y is not None:
        g.y = torch.tensor([[float(y)]], dtype=torch.float32)
    return g
