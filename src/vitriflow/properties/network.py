"""Network structure of oxide glasses: formers, Qn, oxygen speciation, NBO/T and rings.

A *bond* is a former–O pair closer than the cutoff of that pair (``{("Si", "O"): 2.0, ...}``,
either order). Network formers are Si, B and P atoms, and Al atoms whose Al–O coordination
number is in ``former_cn["Al"]`` (default 4: Al(V)/Al(VI) are reported in the CN table but
do not count as formers). Counted per oxygen, the number of former bonds gives the speciation

* free O: 0 formers; NBO (non-bridging): 1; BO (bridging): 2; tricluster: >= 3,

and per former, ``Qn`` has n = number of its O neighbours bonded to at least one other former
(BO and tricluster O both bridge). ``NBO/T`` is the number of NBO per former atom.

Rings are Franzblau shortest-path (SP) rings of the former–O bond graph (D. S. Franzblau,
Phys. Rev. B 44 (1991) 4925: a ring is kept when every pair of its vertices is joined by a
shortest graph path along the ring), found by matscipy's ring engine
(``matscipy.rings.ring_statistics`` calls ``matscipy.ffi.distances_on_graph`` and
``find_sp_rings``; those are called here directly because ``ring_statistics`` takes one cutoff
for all element pairs and would bond modifiers and O–O pairs). This is neither King's nor
Guttman's criterion, which matscipy does not provide. Sizes are reported as the number of
formers in the ring (a 12-vertex T–O ring is a 6-membered ring). Rings that only close through
a periodic image (non-zero sum of bond vectors) are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vitriflow.analysis.coordination import first_minimum
from vitriflow.analysis.rdf import half_min_width, pair_name, rdf

__all__ = [
    "DEFAULT_FORMER_CN",
    "FALLBACK_CUTOFFS",
    "FORMERS",
    "NetworkResult",
    "default_cutoffs",
    "network_properties",
    "nbo_per_t_charge_balance",
    "oxide_fractions",
    "ring_statistics",
    "stack_results",
]

FORMERS: tuple[str, ...] = ("Si", "Al", "B", "P")
ANION = "O"
# Former–O bond cutoffs (Å) used when no g(r) minimum is available: between the first-shell
# peak (Si–O 1.61, Al–O 1.75, B–O 1.37/1.47, P–O 1.54) and the O–O distance of the polyhedron.
FALLBACK_CUTOFFS: dict[tuple[str, str], float] = {
    ("Si", "O"): 2.0, ("Al", "O"): 2.2, ("B", "O"): 1.9, ("P", "O"): 1.9,
}
DEFAULT_FORMER_CN: dict[str, tuple[int, ...]] = {"Al": (4,)}
Q_MAX = 4  # Q0..Q4 reported one by one; n > 4 lumped into "q5plus"
CN_REPORTED = (3, 4, 5, 6)
# Mean T–T distance (Å) of corner-sharing tetrahedra; sets the ring size a cell can resolve.
_T_T_DISTANCE = 3.1


def _key(cutoffs: Mapping[tuple[str, str], float], el: str) -> float:
    for k in ((el, ANION), (ANION, el)):
        if k in cutoffs:
            return float(cutoffs[k])
    return float("nan")


def _symbols_of(atoms_or_symbols) -> list[str]:
    if hasattr(atoms_or_symbols, "get_chemical_symbols"):
        return list(atoms_or_symbols.get_chemical_symbols())
    if isinstance(atoms_or_symbols, str):
        raise ValueError(f"default_cutoffs: expected ASE Atoms or a list of element symbols, "
                         f"got the string {atoms_or_symbols!r}")
    return [str(s) for s in atoms_or_symbols]


def default_cutoffs(
    atoms_or_symbols, formers: Sequence[str] = FORMERS, r_max: float = 4.0, dr: float = 0.01,
    sigma_A: float = 0.1, max_shift_A: float = 0.5,
) -> dict[tuple[str, str], float]:
    """Former–O cutoffs ``{("Si", "O"): r, ...}`` for the formers present.

    With ASE Atoms: the first minimum of the partial g(r) (``vitriflow.analysis.rdf`` +
    ``coordination.first_minimum``), clamped to ``FALLBACK_CUTOFFS`` +- ``max_shift_A`` (a
    far-off minimum means a noisy g(r) or a wide empty gap after the first shell, as in
    crystals and small cells); the fallback itself where g(r) has no minimum or with plain
    symbols.
    """
    symbols = _symbols_of(atoms_or_symbols)
    present = [el for el in formers if el in set(symbols)]
    out: dict[tuple[str, str], float] = {}
    g = None
    if hasattr(atoms_or_symbols, "get_chemical_symbols") and ANION in symbols and present:
        g = rdf(atoms_or_symbols, r_max, dr)
    for el in present:
        fallback = FALLBACK_CUTOFFS.get((el, ANION))
        value = fallback
        if g is not None:
            partial = g.partials.get(pair_name(el, ANION))
            if partial is not None:
                _, r_min = first_minimum(g.r, partial, dr, sigma_A)
                if np.isfinite(r_min):
                    value = r_min if fallback is None else float(
                        np.clip(r_min, fallback - max_shift_A, fallback + max_shift_A))
        if value is None:
            raise ValueError(f"default_cutoffs: no g(r) minimum and no fallback cutoff for "
                             f"{el}-{ANION}; pass cutoffs={{('{el}', 'O'): r}} explicitly")
        out[(el, ANION)] = float(value)
    return out


@dataclass
class NetworkResult:
    """Network analysis of one structure.

    ``scalars``: flat {column: number} (one table row per structure).
    ``qn``: long table former, n, count, fraction (former "T" = all formers pooled).
    ``cn``: long table element, cn, count, fraction, is_former (former–O coordination).
    ``rings``: long table size (formers per ring), n_vertices, count, fraction, per_former.
    ``ring_status``: "ok", "skipped", or why the ring search gave nothing.
    """

    scalars: dict[str, float]
    qn: pd.DataFrame
    cn: pd.DataFrame
    rings: pd.DataFrame
    ring_status: str
    cutoffs: dict[tuple[str, str], float] = field(default_factory=dict)


def _neighbours(atoms, cutoff: float):
    from vesin import NeighborList

    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.all():
        raise ValueError(f"network: expected a fully periodic cell, got pbc={pbc.tolist()}")
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    return nl.compute(np.ascontiguousarray(atoms.positions, dtype=float),
                      np.ascontiguousarray(atoms.cell[:], dtype=float), True, "ijdD")


def _former_bonds(atoms, cutoffs, formers, former_cn):
    """Former->O bonds (i former, j O, D vector i->j), per-atom CN and the former mask."""
    symbols = np.asarray(atoms.get_chemical_symbols())
    n = len(symbols)
    rc = np.full(n, np.nan)
    for el in formers:
        rc[symbols == el] = _key(cutoffs, el)
    finite = rc[np.isfinite(rc)]
    is_o = symbols == ANION
    if finite.size == 0 or not is_o.any():
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty((0, 3)), np.zeros(n, np.int64), np.zeros(n, bool)
    i, j, d, vec = _neighbours(atoms, float(finite.max()))
    sel = np.isfinite(rc[i]) & is_o[j] & (d < np.nan_to_num(rc[i], nan=-1.0))
    i, j, vec = i[sel].astype(np.int64), j[sel].astype(np.int64), vec[sel]
    cn = np.bincount(i, minlength=n)
    is_former = np.isfinite(rc)
    for el, allowed in former_cn.items():
        m = symbols == el
        is_former[m] &= np.isin(cn[m], list(allowed))
    keep = is_former[i]
    return i[keep], j[keep], vec[keep], cn, is_former


def ring_statistics(
    n_atoms: int, i: np.ndarray, j: np.ndarray, vec: np.ndarray, max_ring_size: int = 12,
    max_vertices: int = 8000,
) -> tuple[dict[int, int], str]:
    """SP rings of a bipartite former–O graph given as directed bonds former i -> O j.

    Returns ({ring size in formers: count}, status). Never raises: a failure of the ring
    engine, an oversized graph or a graph without rings give ({}, reason).
    """
    try:
        from matscipy.ffi import distances_on_graph, find_sp_rings
    except ImportError as exc:  # pragma: no cover - matscipy is a dependency
        return {}, f"matscipy not importable ({exc})"
    if len(i) == 0:
        return {}, "no former-O bonds"
    # bridging O only: dead-end O (NBO) cannot lie on a ring and only enlarge the distance map
    n_formers_of_o = np.bincount(j, minlength=n_atoms)
    keep = n_formers_of_o[j] >= 2
    i, j, vec = i[keep], j[keep], vec[keep]
    if len(i) == 0:
        return {}, "no bridging oxygen: no rings"
    nodes = np.unique(np.concatenate([i, j]))
    if nodes.size > max_vertices:
        return {}, (f"graph has {nodes.size} vertices > max_vertices={max_vertices} "
                    "(the distance map is vertices^2 integers)")
    # vertex 0 is left isolated: the engine marks walkers heading back by a negative vertex
    # index, which is ambiguous for vertex 0
    index = np.zeros(n_atoms, dtype=np.int64)
    index[nodes] = np.arange(1, nodes.size + 1)
    a = np.concatenate([index[i], index[j]])
    b = np.concatenate([index[j], index[i]])
    r = np.concatenate([vec, -vec])
    order = np.lexsort((b, a))
    a = np.ascontiguousarray(a[order], dtype=np.int32)
    b = np.ascontiguousarray(b[order], dtype=np.int32)
    r = np.ascontiguousarray(r[order], dtype=float)
    try:
        dist = distances_on_graph(a, b)
        counts = find_sp_rings(a, b, r, dist, 2 * int(max_ring_size) + 1)
    except Exception as exc:  # noqa: BLE001 - matscipy raises RuntimeError/ValueError/MemoryError
        return {}, f"matscipy ring search failed: {type(exc).__name__}: {exc}"
    out = {k // 2: int(c) for k, c in enumerate(np.asarray(counts)) if c > 0 and k % 2 == 0}
    odd = [k for k, c in enumerate(np.asarray(counts)) if c > 0 and k % 2 == 1]
    if odd:  # impossible in a bipartite graph; would mean a bond list error
        return {}, f"odd rings of {odd} vertices in a former-O graph: inconsistent bond list"
    out = {k: c for k, c in sorted(out.items()) if k <= max_ring_size}
    return out, "ok" if out else "no rings up to max_ring_size"


def network_properties(
    atoms, cutoffs: Mapping[tuple[str, str], float] | None = None, *,
    formers: Sequence[str] = FORMERS,
    former_cn: Mapping[str, Iterable[int]] | None = None,
    rings: bool = True, max_ring_size: int = 12, max_ring_vertices: int = 8000,
) -> NetworkResult:
    """Network structure of one periodic oxide cell (ASE Atoms).

    ``cutoffs``: former–O cutoffs (either key order); by default ``default_cutoffs(atoms)``.
    ``former_cn``: per element, the coordination numbers that make an atom a former
    (default ``{"Al": (4,)}``; elements not listed are formers at any CN).

    Scalar columns (X = each former element present, T = all formers pooled, only written
    when more than one former species is present): n_atoms, n_O, n_T, n_X, cutoff_X_O,
    cn_mean_X, cn{3,4,5,6}_frac_X, former_frac_X, q{0..4}_X, q5plus_X, qn_mean_X (and _T),
    o_free_frac, o_nbo_frac, o_bo_frac, o_tri_frac, nbo_per_t, bo_per_t, cell_min_width_A,
    ring_size_resolved (largest ring, in formers, that a cell this narrow resolves: 2 x width
    / 3.1 Å, a conservative bound from alpha-quartz supercells) and, with ``rings``,
    ring_count, rings_per_former, ring_mean_size, ring{2..max_ring_size}_frac, ring_ok.
    """
    former_cn = {k: tuple(v) for k, v in (DEFAULT_FORMER_CN if former_cn is None
                                           else former_cn).items()}
    symbols = np.asarray(atoms.get_chemical_symbols())
    present = [el for el in formers if (symbols == el).any()]
    if cutoffs is None:
        cutoffs = default_cutoffs(atoms, formers=formers)
    missing = [el for el in present if not np.isfinite(_key(cutoffs, el))]
    if missing:
        raise ValueError(f"network: no cutoff for {[f'{el}-O' for el in missing]} in cutoffs="
                         f"{dict(cutoffs)}; expected e.g. {{('Si', 'O'): 2.0}}")
    used = {(el, ANION): _key(cutoffs, el) for el in present}
    i, j, vec, cn, is_former = _former_bonds(atoms, used, present, former_cn)
    n = len(symbols)
    is_o = symbols == ANION
    nf_o = np.bincount(j, minlength=n)  # formers bonded to each O
    bridging = nf_o >= 2
    n_bridge = np.bincount(i, weights=bridging[j].astype(float), minlength=n).astype(np.int64)

    sc: dict[str, float] = {"n_atoms": float(n), "n_O": float(is_o.sum())}
    qn_rows, cn_rows = [], []
    for el in present:
        m = symbols == el
        sc[f"cutoff_{el}_O"] = used[(el, ANION)]
        sc[f"n_{el}"] = float(m.sum())
        k, counts = np.unique(cn[m], return_counts=True)
        fr = counts / m.sum()
        allowed = former_cn.get(el)
        for kk, c, f in zip(k, counts, fr, strict=True):
            cn_rows.append((el, int(kk), int(c), float(f),
                            bool(allowed is None or int(kk) in allowed)))
        sc[f"cn_mean_{el}"] = float(cn[m].mean())
        for kk in CN_REPORTED:
            sc[f"cn{kk}_frac_{el}"] = float(np.mean(cn[m] == kk))
        sc[f"former_frac_{el}"] = float(is_former[m].mean())
    groups = [(el, is_former & (symbols == el)) for el in present] + [("T", is_former)]
    for label, m in groups:
        nt = int(m.sum())
        nb = n_bridge[m]
        hist = np.bincount(nb, minlength=Q_MAX + 1)
        for q, c in enumerate(hist):
            qn_rows.append((label, q, int(c), float(c / nt) if nt else float("nan")))
        if label == "T" and len(present) == 1:
            continue  # identical to the single former's columns
        for q in range(Q_MAX + 1):
            sc[f"q{q}_{label}"] = float(hist[q] / nt) if nt else float("nan")
        sc[f"q5plus_{label}"] = float(hist[Q_MAX + 1:].sum() / nt) if nt else float("nan")
        sc[f"qn_mean_{label}"] = float(nb.mean()) if nt else float("nan")
    n_t = int(is_former.sum())
    n_o = int(is_o.sum())
    spec = {"free": nf_o[is_o] == 0, "nbo": nf_o[is_o] == 1, "bo": nf_o[is_o] == 2,
            "tri": nf_o[is_o] >= 3}
    sc["n_T"] = float(n_t)
    for name, mask in spec.items():
        sc[f"o_{name}_frac"] = float(mask.mean()) if n_o else float("nan")
    n_nbo = int(spec["nbo"].sum())
    sc["nbo_per_t"] = n_nbo / n_t if n_t else float("nan")
    sc["bo_per_t"] = int(spec["bo"].sum()) / n_t if n_t else float("nan")

    ring_table = pd.DataFrame(columns=["size", "n_vertices", "count", "fraction", "per_former"])
    w = half_min_width(atoms.cell[:]) * 2.0
    resolved = int(np.floor(2.0 * w / _T_T_DISTANCE))
    if rings:
        ring_counts, status = ring_statistics(n, i, j, vec, max_ring_size, max_ring_vertices)
        total = sum(ring_counts.values())
        if ring_counts:
            sizes = np.array(sorted(ring_counts))
            cnt = np.array([ring_counts[s] for s in sizes], dtype=np.int64)
            ring_table = pd.DataFrame({"size": sizes, "n_vertices": 2 * sizes, "count": cnt,
                                       "fraction": cnt / total, "per_former": cnt / n_t})
            if max_ring_size > resolved:
                status = (f"ok; cell width {w:.1f} Å resolves rings up to ~{resolved} formers, "
                          "larger ones may be miscounted")
        sc["ring_count"] = float(total)
        sc["rings_per_former"] = total / n_t if n_t else float("nan")
        sc["ring_mean_size"] = (float((ring_table["size"] * ring_table["fraction"]).sum())
                                if total else float("nan"))
        for size in range(2, max_ring_size + 1):
            sc[f"ring{size}_frac"] = (float(ring_counts.get(size, 0) / total) if total
                                      else float("nan"))
        sc["ring_ok"] = float(bool(ring_counts))
    else:
        status = "skipped"
    sc["cell_min_width_A"] = float(w)
    sc["ring_size_resolved"] = float(resolved)
    qn = pd.DataFrame(qn_rows, columns=["former", "n", "count", "fraction"])
    cn_df = pd.DataFrame(cn_rows, columns=["element", "cn", "count", "fraction", "is_former"])
    return NetworkResult(sc, qn, cn_df, ring_table, status, used)


def stack_results(results: Mapping[str, NetworkResult], key: str = "structure_id"):
    """(scalars, qn, cn, rings) DataFrames for many structures, each with a ``key`` column."""
    scal, qn, cn, rings = [], [], [], []
    for sid, res in results.items():
        scal.append({key: sid, **res.scalars, "ring_status": res.ring_status})
        for frame, out in ((res.qn, qn), (res.cn, cn), (res.rings, rings)):
            if len(frame):
                out.append(frame.assign(**{key: sid}))

    def cat(frames, cols):
        if not frames:
            return pd.DataFrame(columns=[key, *cols])
        df = pd.concat(frames, ignore_index=True)
        return df[[key, *[c for c in df.columns if c != key]]]

    return (pd.DataFrame(scal), cat(qn, ["former", "n", "count", "fraction"]),
            cat(cn, ["element", "cn", "count", "fraction", "is_former"]),
            cat(rings, ["size", "n_vertices", "count", "fraction", "per_former"]))


# ---------------------------------------------------------------- charge balance

_FORMER_OXIDES = {"Si": "SiO2", "Al": "Al2O3"}
_NOT_DEFINED = {"B": "B2O3", "P": "P2O5"}


def oxide_fractions(composition, where: str = "composition") -> dict[str, float]:
    """Normalised unit mole fractions of a GlassComposition, a mapping or a string.

    Besides what ``vitriflow.composition.parse_composition`` reads, accepts the structure
    labels "(Na2O)0.3-(SiO2)0.7" (parenthesised units joined by '-').
    """
    from vitriflow.composition import CompositionError, GlassComposition, parse_composition

    if isinstance(composition, GlassComposition):
        return composition.fractions
    try:
        return parse_composition(composition, where=where).fractions
    except CompositionError:
        if isinstance(composition, str) and re.search(r"\)\s*[0-9.eE+]*\s*-\s*\(", composition):
            joined = re.sub(r"\)\s*([0-9.eE+]*)\s*-\s*\(", r")\1(", composition)
            return parse_composition(joined, where=where).fractions
        raise


_ALKALI = ("Li", "Na", "K", "Rb", "Cs")
_ALKALINE_EARTH = ("Be", "Mg", "Ca", "Sr", "Ba")


def cell_oxides(symbols) -> dict[str, float]:
    """Oxide mole fractions of a cell from its atoms' chemical symbols (the exact stoichiometry
    of the MD glass, whatever its label says): Si -> SiO2, Al -> Al2O3, alkali -> M2O,
    alkaline earth -> MO. ValueError for any other cation."""
    from collections import Counter

    moles = {}
    for el, n in Counter(symbols).items():
        if el == ANION:
            continue
        if el == "Si" or el in _ALKALINE_EARTH:
            moles[f"{el}O2" if el == "Si" else f"{el}O"] = float(n)
        elif el == "Al" or el in _ALKALI:
            moles[f"{el}2O3" if el == "Al" else f"{el}2O"] = n / 2.0
        else:
            raise ValueError(f"cell_oxides: {el} is neither Si, Al, an alkali nor an "
                             "alkaline earth")
    total = sum(moles.values())
    return {oxide: m / total for oxide, m in moles.items()}


def nbo_per_t_charge_balance(composition) -> float:
    """NBO/T of an (alumino)silicate glass from its oxide composition by charge balance.

    With mole fractions of SiO2, Al2O3 and the modifier oxides (alkali M2O and alkaline-earth
    MO, each supplying one O and two positive charges per mole):

        NBO/T = 2 (sum M2O + sum MO - Al2O3) / (SiO2 + 2 Al2O3),   0 when peraluminous,

    i.e. every Al is a charge-compensated AlO4 tetrahedron and each remaining modifier oxide
    breaks one T–O–T bridge into two NBO (Mysen, Virgo & Seifert, Rev. Geophys. Space Phys.
    20 (1982) 353). It equals 2 n_O / n_T - 4 for a network of corner-sharing tetrahedra.
    ``composition``: a ``GlassComposition``, a mapping {oxide: mol% or fraction} or a string
    such as ``"Na2O-2SiO2"``. B2O3/P2O5 (trigonal boron, P=O bonds) and other oxides are
    refused.
    """
    from pymatgen.core import Composition, Element

    fr = oxide_fractions(composition, where="nbo_per_t_charge_balance")
    si = al = mod = 0.0
    for unit, x in fr.items():
        els = Composition(unit).get_el_amt_dict()
        cations = [e for e in els if e != ANION]
        if ANION not in els or len(cations) != 1:
            raise ValueError(f"nbo_per_t_charge_balance: {unit!r} is not a binary oxide")
        el = cations[0]
        if el == "Si":
            si += x
        elif el == "Al":
            al += x
        elif el in _NOT_DEFINED:
            raise ValueError(f"nbo_per_t_charge_balance: {_NOT_DEFINED[el]} present; the "
                             "charge-balance NBO/T is defined here for (alumino)silicates only")
        elif (Element(el).is_alkali or Element(el).is_alkaline) and els[ANION] == 1:
            mod += x
        else:
            raise ValueError(f"nbo_per_t_charge_balance: oxide {unit!r} is neither SiO2, Al2O3 "
                             "nor an alkali (M2O) / alkaline-earth (MO) modifier")
    t = si + 2.0 * al
    if t <= 0:
        raise ValueError(f"nbo_per_t_charge_balance: no SiO2/Al2O3 in {fr}; NBO/T undefined")
    return max(0.0, 2.0 * (mod - al) / t)
