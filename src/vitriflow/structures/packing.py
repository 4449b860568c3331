"""Random packing of amorphous starting cells (Aykol et al.: random positions in a cubic box at
1.15 x the crystal volume per atom, overlaps removed by a soft-sphere FIRE relaxation).

Each cell is deterministic in (master seed, system, composition index, replica): positions come
from a NumPy generator seeded by ``vitriflow.structures.ids.structure_seed``. Overlaps are removed
with torch-sim's multi-species soft-sphere model and FIRE, all cells of a job in one batch, until
every pair is at least ``min_distance_scale`` x (sum of covalent radii) apart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

log = logging.getLogger("vitriflow.packing")
AMU_PER_A3_TO_G_CM3 = 1.66053906660


class PackingError(RuntimeError):
    """A cell whose overlaps could not be removed."""


@dataclass(frozen=True)
class PackingRequest:
    """What to pack: element counts, target volume per atom, seed, and metadata for atoms.info."""

    counts: Mapping[str, int]
    volume_per_atom: float
    seed: int
    info: Mapping[str, object]


def pair_thresholds(symbols: Sequence[str], scale: float) -> np.ndarray:
    """Species-aware minimum distances: scale x (r_cov_a + r_cov_b), matrix over ``symbols``."""
    radii = np.array([covalent_radii[atomic_numbers[s]] for s in symbols])
    return scale * (radii[:, None] + radii[None, :])


def min_pair_ratio(atoms: Atoms, scale: float) -> tuple[float, float]:
    """(min over pairs of distance / threshold, the minimum distance) under periodic images."""
    from vesin import NeighborList

    symbols = sorted(set(atoms.get_chemical_symbols()))
    thr = pair_thresholds(symbols, scale)
    cutoff = float(thr.max()) * 1.01
    i, j, d = NeighborList(cutoff=cutoff, full_list=False).compute(
        points=atoms.positions, box=atoms.cell.array, periodic=True, quantities="ijd"
    )
    if len(d) == 0:
        return float("inf"), float("inf")
    idx = {s: k for k, s in enumerate(symbols)}
    species = np.array([idx[s] for s in atoms.get_chemical_symbols()])
    ratio = d / thr[species[i], species[j]]
    return float(ratio.min()), float(d.min())


def random_cell(req: PackingRequest) -> Atoms:
    """Random positions in a cubic box of volume N x volume_per_atom."""
    symbols = [el for el, n in sorted(req.counts.items()) for _ in range(int(n))]
    n = len(symbols)
    length = (n * req.volume_per_atom) ** (1.0 / 3.0)
    rng = np.random.default_rng(req.seed)
    order = rng.permutation(n)
    positions = rng.random((n, 3)) * length
    atoms = Atoms([symbols[k] for k in order], positions=positions, cell=[length] * 3, pbc=True)
    return atoms


def density_g_cm3(atoms: Atoms) -> float:
    """Mass density of a periodic cell (g/cm^3)."""
    return float(atoms.get_masses().sum() * AMU_PER_A3_TO_G_CM3 / abs(atoms.get_volume()))


def pack(requests: Sequence[PackingRequest], min_distance_scale: float = 0.7,
         max_steps: int = 3000, device: str = "cpu") -> list[Atoms]:
    """Pack every request; overlaps removed in one batched soft-sphere FIRE run.

    A cell that still has a pair closer than its threshold after ``max_steps`` is returned with
    ``info["status"] = "failed"`` and the reason (MD passes it through as failed), so one
    composition of a scan that cannot be packed does not cost the others theirs. Raises
    ``PackingError`` when no cell could be packed: then the settings, not a cell, are wrong.
    """
    import torch
    import torch_sim as ts
    from torch_sim.models.soft_sphere import SoftSphereMultiModel
    from torch_sim.neighbors import vesin_nl

    cells = [random_cell(r) for r in requests]
    if not cells:
        return []
    species = sorted({s for a in cells for s in a.get_chemical_symbols()},
                     key=lambda s: atomic_numbers[s])
    z = torch.tensor([atomic_numbers[s] for s in species])
    # sigma a bit above the threshold so FIRE pushes pairs past it, not onto it
    sigma = torch.tensor(pair_thresholds(species, min_distance_scale) * 1.08, dtype=torch.float64)
    model = SoftSphereMultiModel(atomic_numbers=z, sigma_matrix=sigma,
                                 epsilon_matrix=torch.ones_like(sigma),
                                 alpha_matrix=2.0 * torch.ones_like(sigma),
                                 device=torch.device(device), dtype=torch.float64,
                                 cutoff=float(sigma.max()),
                                 # vesin has no fixed neighbour cap (the default alchemiops list
                                 # overflows on the dense random starts this is meant to fix)
                                 neighbor_list_fn=vesin_nl)
    state = ts.io.atoms_to_state(cells, device=torch.device(device), dtype=torch.float64)
    converge = ts.generate_force_convergence_fn(force_tol=1e-3)
    state = ts.optimize(system=state, model=model, optimizer=ts.Optimizer.fire,
                        convergence_fn=converge, max_steps=max_steps)
    packed = state.to_atoms()
    out, failed = [], []
    for atoms, req in zip(packed, requests, strict=True):
        atoms.wrap()
        ratio, dmin = min_pair_ratio(atoms, min_distance_scale)
        name = req.info.get("structure_id", "?")
        atoms.info.update(dict(req.info))
        if ratio < 0.999:
            why = (f"{name}: closest pair {dmin:.2f} Å is below {min_distance_scale} x covalent "
                   f"radii after {max_steps} FIRE steps (lower packing.min_distance_scale or raise "
                   "density_scale)")
            log.error("packing failed: %s", why)
            atoms.info.update(status="failed", reason=f"packing: {why}")
            failed.append(why)
        atoms.info["seed"] = int(req.seed)
        atoms.info["min_distance_A"] = round(dmin, 4)
        atoms.info["density_g_cm3"] = round(density_g_cm3(atoms), 5)
        out.append(atoms)
    if len(failed) == len(out):
        raise PackingError(failed[0] if len(failed) == 1
                           else f"no cell could be packed; first: {failed[0]}")
    return out
