"""Coordination shells from g(r) minima, coordination numbers and bond-angle distributions.

The coordination cutoff of a pair is the first minimum of its (Gaussian-smoothed) g_ab(r)
after the first peak. Where g(r) has a flat zero gap after the first shell (Si-O in silica:
nothing between ~1.9 and ~2.9 Å), the middle of that near-minimal plateau is used, so the
cutoff does not sit on the rising edge of the second shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = [
    "angle_histogram",
    "bond_angles",
    "coordination_numbers",
    "default_triplets",
    "first_minimum",
    "first_peak",
    "histogram_mode",
    "smooth",
]


def smooth(g: np.ndarray, dr: float, sigma_A: float) -> np.ndarray:
    """Gaussian smoothing with a width in Å (0 = no smoothing)."""
    if sigma_A <= 0:
        return np.asarray(g, dtype=float)
    return gaussian_filter1d(np.asarray(g, dtype=float), sigma_A / dr, mode="nearest")


def first_peak(r: np.ndarray, g: np.ndarray, min_height_fraction: float = 0.5) -> int | None:
    """Index of the first local maximum of g that reaches ``min_height_fraction`` x max(g).

    Returns None for an all-zero (or empty) g.
    """
    g = np.asarray(g, dtype=float)
    if g.size < 3 or not np.isfinite(g).all() or g.max() <= 0:
        return None
    threshold = min_height_fraction * g.max()
    inner = (g[1:-1] >= g[:-2]) & (g[1:-1] > g[2:]) & (g[1:-1] >= threshold)
    idx = np.flatnonzero(inner)
    if idx.size:
        return int(idx[0] + 1)
    return int(np.argmax(g))


def first_minimum(
    r: np.ndarray, g: np.ndarray, dr: float, sigma_A: float = 0.1,
    plateau_tolerance: float = 0.02,
) -> tuple[float, float]:
    """(r_peak, r_min) of a pair's g(r): first peak and the first minimum after it.

    ``plateau_tolerance`` (fraction of the peak height) defines the near-minimal plateau whose
    middle is returned. NaN where no peak or no minimum lies inside the r-range.
    """
    gs = smooth(g, dr, sigma_A)
    ip = first_peak(r, gs)
    if ip is None:
        return float("nan"), float("nan")
    tail = gs[ip:]
    # first local minimum after the peak (non-strict on the left so plateaus count)
    rising = np.flatnonzero((tail[1:-1] <= tail[:-2]) & (tail[1:-1] < tail[2:]))
    if rising.size == 0:
        return float(r[ip]), float("nan")
    im = ip + 1 + int(rising[0])
    gmin = gs[im]
    tol = plateau_tolerance * gs[ip]
    # walk left/right from im while g stays within tol of the minimum (contiguous plateau)
    lo = im
    while lo - 1 > ip and gs[lo - 1] <= gmin + tol:
        lo -= 1
    hi = im
    while hi + 1 < len(gs) - 1 and gs[hi + 1] <= gmin + tol:
        hi += 1
    return float(r[ip]), float(0.5 * (r[lo] + r[hi]))


def _typed_neighbours(atoms, cutoff: float):
    """Full neighbour list (i, j, d, D) within ``cutoff`` (vesin, periodic images included)."""
    from vesin import NeighborList

    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, d, vec = nl.compute(
        np.ascontiguousarray(atoms.positions, dtype=float),
        np.ascontiguousarray(atoms.cell[:], dtype=float),
        np.asarray(atoms.pbc, dtype=bool),
        "ijdD",
    )
    return i, j, d, vec


def _cutoff(cutoffs: Mapping[tuple[str, str], float], a: str, b: str) -> float:
    key = (a, b) if (a, b) in cutoffs else (b, a)
    return float(cutoffs.get(key, np.nan))


def coordination_numbers(
    atoms, cutoffs: Mapping[tuple[str, str], float], neighbours=None,
) -> dict[tuple[str, str], np.ndarray]:
    """Per-atom coordination numbers: ``{(A, B): array over A atoms of #B within r_AB}``.

    ``cutoffs`` maps unordered species pairs (either order) to a cutoff in Å; pairs with NaN or
    missing cutoffs are skipped. Both directions (B around A and A around B) are returned.
    """
    symbols = np.asarray(atoms.get_chemical_symbols())
    species = sorted(set(symbols.tolist()))
    finite = {k: v for k, v in cutoffs.items() if np.isfinite(v) and v > 0}
    if not finite:
        return {}
    i, j, d, _ = neighbours if neighbours is not None else _typed_neighbours(
        atoms, max(finite.values()))
    out: dict[tuple[str, str], np.ndarray] = {}
    for a in species:
        ia = np.flatnonzero(symbols == a)
        for b in species:
            rc = _cutoff(finite, a, b)
            if not np.isfinite(rc):
                continue
            sel = (symbols[i] == a) & (symbols[j] == b) & (d < rc)
            cn = np.bincount(i[sel], minlength=len(symbols))[ia]
            out[(a, b)] = cn
    return out


ANIONS = frozenset({"O", "F", "S", "Cl", "N", "Se", "Br", "I", "Te"})


def default_triplets(cutoffs: Mapping[tuple[str, str], float]) -> list[tuple[str, str, str]]:
    """Default bond angles from the pairs that have a finite cutoff.

    With anions present (O, F, S, ...): anion-cation-anion and cation-anion-cation for every
    cation-anion pair (O-Si-O, Si-O-Si, O-Al-O, Al-O-Al, ...). Without anions (metals,
    intermetallics): B-A-B and A-B-A for every unlike pair.
    """
    species = {el for pair in cutoffs for el in pair}
    has_anion = bool(species & ANIONS)
    out = set()
    for (a, b), rc in cutoffs.items():
        if a == b or not np.isfinite(rc):
            continue
        if has_anion and (a in ANIONS) == (b in ANIONS):
            continue  # cation-cation or anion-anion pair: not a bond
        out.add((b, a, b))
        out.add((a, b, a))
    return sorted(out)


def bond_angles(
    atoms, triplets: Iterable[tuple[str, str, str]],
    cutoffs: Mapping[tuple[str, str], float], neighbours=None,
) -> dict[tuple[str, str, str], np.ndarray]:
    """Bond angles (degrees) for triplets (X, A, Y): centre A, neighbours X and Y.

    A neighbour counts when it lies within the X-A (resp. Y-A) cutoff. Vectorised per
    coordination number of the centre: no Python loop over atoms.
    """
    triplets = [tuple(t) for t in triplets]
    symbols = np.asarray(atoms.get_chemical_symbols())
    rcs = [_cutoff(cutoffs, x, a) for x, a, _ in triplets] + [
        _cutoff(cutoffs, y, a) for _, a, y in triplets]
    rcs = [rc for rc in rcs if np.isfinite(rc) and rc > 0]
    out: dict[tuple[str, str, str], np.ndarray] = {}
    if not rcs:
        return {t: np.empty(0) for t in triplets}
    i, j, d, vec = neighbours if neighbours is not None else _typed_neighbours(atoms, max(rcs))
    for x, a, y in triplets:
        rx, ry = _cutoff(cutoffs, x, a), _cutoff(cutoffs, y, a)
        if not (np.isfinite(rx) and np.isfinite(ry)):
            out[(x, a, y)] = np.empty(0)
            continue
        centre = symbols[i] == a
        is_x = centre & (symbols[j] == x) & (d < rx)
        is_y = centre & (symbols[j] == y) & (d < ry)
        sel = is_x | is_y
        ii, uu = i[sel], vec[sel] / d[sel][:, None]
        fx, fy = is_x[sel], is_y[sel]
        order = np.argsort(ii, kind="stable")
        ii, uu, fx, fy = ii[order], uu[order], fx[order], fy[order]
        starts = np.flatnonzero(np.r_[True, ii[1:] != ii[:-1]]) if ii.size else np.empty(0, int)
        sizes = np.diff(np.r_[starts, ii.size])
        angles = []
        for k in np.unique(sizes):
            if k < 2:
                continue
            s = starts[sizes == k]
            idx = s[:, None] + np.arange(k)[None, :]  # (n_centres, k)
            u, mx, my = uu[idx], fx[idx], fy[idx]
            p, q = np.triu_indices(k, 1)
            cos = np.einsum("ncd,ncd->nc", u[:, p], u[:, q])
            # unordered neighbour pair (p, q) is an X-A-Y angle if one end is X and the other Y
            ok = (mx[:, p] & my[:, q]) | (my[:, p] & mx[:, q])
            angles.append(np.degrees(np.arccos(np.clip(cos[ok], -1.0, 1.0))))
        out[(x, a, y)] = np.concatenate(angles) if angles else np.empty(0)
    return out


def angle_histogram(angles: np.ndarray, bin_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised angle distribution P(theta) (1/deg) on [0, 180] with bins of ``bin_deg``."""
    n = int(round(180.0 / bin_deg))
    edges = np.linspace(0.0, 180.0, n + 1)
    hist, _ = np.histogram(angles, bins=edges)
    total = hist.sum()
    p = hist / (total * bin_deg) if total else hist.astype(float)
    return 0.5 * (edges[1:] + edges[:-1]), p


def histogram_mode(x: np.ndarray, p: np.ndarray, sigma: float = 0.0) -> float:
    """Position of the maximum of a (optionally smoothed, sigma in x units) histogram."""
    p = np.asarray(p, dtype=float)
    if p.size == 0 or not np.any(p > 0):
        return float("nan")
    if sigma > 0:
        p = gaussian_filter1d(p, sigma / (x[1] - x[0]), mode="nearest")
    return float(x[int(np.argmax(p))])


def cn_distribution(cn: np.ndarray, max_cn: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(k, fraction of centres with CN == k) for k = 0..max_cn."""
    k = np.arange(max_cn + 1)
    if len(cn) == 0:
        return k, np.zeros(max_cn + 1)
    counts = np.bincount(np.minimum(cn, max_cn), minlength=max_cn + 1)
    return k, counts / counts.sum()


def to_cutoff_map(pairs: Mapping[str, float]) -> dict[tuple[str, str], float]:
    """``{"O-Si": 2.3}`` (config/table form) -> ``{("O", "Si"): 2.3}``."""
    out = {}
    for name, val in pairs.items():
        parts = name.split("-")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"analysis.cutoffs: pair {name!r} must look like 'O-Si'")
        out[tuple(sorted(parts))] = float(val)
    return out


def parse_triplets(items: Sequence[str]) -> list[tuple[str, str, str]]:
    """``["O-Si-O"]`` -> ``[("O", "Si", "O")]`` (centre in the middle)."""
    out = []
    for t in items:
        parts = t.split("-")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"analysis.angle_triplets: {t!r} must look like 'O-Si-O' (centre in "
                             "the middle)")
        out.append(tuple(parts))
    return out
