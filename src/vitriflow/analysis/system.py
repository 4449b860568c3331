"""Analysis of all quenched structures of one system: the tables of the analysis stage.

``analyze_system`` turns the frames of ``results/md/{system}/quenched.extxyz`` into four
long/wide tables (see docs/CONTRACTS.md): per-structure partial RDFs, per-structure
properties (density, energies, formation energy, coordination, angles, F(Q) agreement),
CN and angle distributions, and neutron S(Q)/F(Q). Coordination cutoffs come from the first
minimum of the replica-averaged partial g_ab(r) of each composition (or from config).
Failed structures become property rows with their status and reason and nothing else.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.analysis.coordination import (
    _typed_neighbours,
    angle_histogram,
    bond_angles,
    cn_distribution,
    coordination_numbers,
    default_triplets,
    first_minimum,
    histogram_mode,
    parse_triplets,
    to_cutoff_map,
)
from vitriflow.analysis.rdf import (
    RDF,
    average_rdf,
    half_min_width,
    pair_name,
    r_grid,
    rdf,
    species_pairs,
)
from vitriflow.analysis.scattering import (
    MissingScatteringLength,
    load_experimental_fq,
    load_scattering_lengths,
    neutron_fq,
    r_chi,
)
from vitriflow.structures.packing import density_g_cm3

log = logging.getLogger("vitriflow.analysis")


__all__ = ["AnalysisResult", "AnalysisSettings", "analyze_system", "density_g_cm3",
           "formation_energy_per_atom", "is_silica", "replica_average"]


@dataclass(frozen=True)
class AnalysisSettings:
    """Numbers of the analysis stage (config section ``analysis``: meanings and defaults in its
    schema); build it with ``from_config``."""

    r_max: float
    dr: float
    smoothing_A: float
    cutoffs: Mapping[str, float]
    angle_triplets: tuple[str, ...] | None
    angle_bin_deg: float
    angle_smoothing_deg: float
    plot_smoothing_A: float
    max_cn: int
    q_min: float
    q_max: float
    dq: float
    lorch: bool
    scattering_lengths: str | None
    experimental_fq: str | None
    rchi_q_min: float
    rchi_q_max: float
    report_max_systems: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None = None) -> AnalysisSettings:
        """Settings from an ``analysis`` section, validated against its schema with the
        schema's defaults filled in (a section from ``load_config`` passes unchanged)."""
        from vitriflow.config import with_defaults

        s = cls(**with_defaults("analysis", cfg))
        r_grid(s.r_max, s.dr)  # r_max must be a whole number of bins
        if not (0 < s.q_min < s.q_max):
            raise ValueError(f"analysis.q_min/q_max: expected 0 < q_min < q_max; got {s.q_min}, "
                             f"{s.q_max}")
        return s

    @property
    def q(self) -> np.ndarray:
        n = int(math.floor((self.q_max - self.q_min) / self.dq + 1e-9)) + 1
        return self.q_min + self.dq * np.arange(n)


@dataclass
class AnalysisResult:
    rdf: pd.DataFrame
    properties: pd.DataFrame
    distributions: pd.DataFrame
    sq: pd.DataFrame
    notes: dict[str, Any]


def _energy_per_atom(atoms) -> float:
    info = atoms.info
    for key in ("energy_per_atom_eV",):
        if key in info and info[key] is not None:
            return float(info[key])
    for key in ("energy_eV", "energy"):
        if key in info and info[key] is not None:
            return float(info[key]) / len(atoms)
    if atoms.calc is not None:
        try:
            return float(atoms.get_potential_energy()) / len(atoms)
        except Exception:  # noqa: BLE001 - a calculator without results gives no energy
            return float("nan")
    return float("nan")


def formation_energy_per_atom(
    energy_per_atom: float, fractions: Mapping[str, float], refs: Mapping[str, Any] | None,
    potential: str | None,
) -> tuple[float, str]:
    """E_f = E/N - sum_el x_el mu_el and a reason ('' when computed, else why it is NaN).

    ``refs`` is the ``elemental_refs.json`` document: ``{"potential", "energies_per_atom",
    "reason"}``. References computed with another potential than the structure are refused.
    """
    nan = float("nan")
    if refs is None:
        return nan, "no elemental reference file"
    mu = refs.get("energies_per_atom")
    if not mu:
        return nan, f"no elemental references: {refs.get('reason') or 'not given'}"
    ref_pot = refs.get("potential")
    if potential and ref_pot and str(ref_pot) != str(potential):
        return nan, f"references computed with {ref_pot}, structure with {potential}"
    missing = sorted(el for el, x in fractions.items() if x > 0 and el not in mu)
    if missing:
        return nan, f"no elemental reference energy for {missing}"
    if not np.isfinite(energy_per_atom):
        return nan, "structure energy unknown"
    ef = energy_per_atom - sum(x * float(mu[el]) for el, x in fractions.items() if x > 0)
    return float(ef), ""


def is_silica(fractions: Mapping[str, float], tol: float = 0.01) -> bool:
    """True for Si-O-only chemistry at the SiO2 stoichiometry (the NIMROD reference)."""
    present = {el for el, x in fractions.items() if x > 0}
    return present == {"O", "Si"} and abs(fractions["O"] - 2.0 / 3.0) < tol


def _reduced_formula(atoms) -> str:
    from pymatgen.core import Composition

    return Composition(atoms.get_chemical_formula()).reduced_formula


def _meta(atoms, k: int, system: str) -> dict[str, Any]:
    info = atoms.info
    ci = int(info.get("composition_index", -1))
    rep = int(info.get("replica", 0))
    sid = info.get("structure_id") or (
        f"{system}-c{ci:04d}-r{rep:02d}" if ci >= 0 else f"{system}-f{k:04d}")
    formula = info.get("formula") or _reduced_formula(atoms)
    status = str(info.get("status", "ok"))
    return {
        "structure_id": str(sid), "system": str(info.get("system", system)),
        "composition_index": ci, "replica": rep,
        "label": str(info.get("label", formula)), "formula": str(formula),
        "potential": str(info.get("potential", "")), "status": status,
        "reason": "" if status == "ok" else str(info.get("reason", "")),
    }


def _col(name: str) -> str:
    return name.replace("-", "_")


def analyze_system(
    frames: Sequence, settings: AnalysisSettings, system: str,
    refs: Mapping[str, Any] | None = None,
    status_override: Mapping[str, tuple[str, str]] | None = None,
    samples: Mapping[str, Sequence] | None = None,
) -> AnalysisResult:
    """Analyse every frame of one system; see the module docstring for the outputs.

    ``status_override`` maps structure_id -> (status, reason), e.g. from summary.parquet,
    where it disagrees with the frames' own info. ``samples`` maps structure_id -> frames of
    that structure along the MD's last stage: g(r), S(Q), coordination and angles are then
    averaged over them (the structure at that temperature) instead of taken from the relaxed
    frame; density and energies always come from the relaxed frame.
    """
    if not frames:
        raise ValueError(f"analysis: system {system!r} has no structures")
    metas = [_meta(a, k, system) for k, a in enumerate(frames)]
    for m in metas:
        if status_override and m["structure_id"] in status_override:
            st, why = status_override[m["structure_id"]]
            if st != "ok":
                m["status"], m["reason"] = st, why or m["reason"]
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    pairs = [pair_name(a, b) for a, b in species_pairs(elements)]
    ok = [k for k, m in enumerate(metas) if m["status"] == "ok"]
    log.info("system %s: %d structures, %d ok, elements %s", system, len(frames), len(ok), elements)

    # 1. RDF of every good structure on the common grid; a cell that cannot be analysed (NaN
    #    positions, a collapsed cell) is marked failed alone instead of stopping the system
    rdfs: dict[int, RDF] = {}
    views: dict[int, list] = {}  # the frames each structure's structural averages come from
    for k in ok:
        views[k] = list((samples or {}).get(metas[k]["structure_id"]) or [frames[k]])
        try:
            if not all(np.isfinite(a.positions).all() for a in views[k]):
                raise ValueError("non-finite positions")
            rdfs[k] = average_rdf([rdf(a, settings.r_max, settings.dr, elements) for a in views[k]])
        except (ValueError, RuntimeError) as exc:
            metas[k]["status"], metas[k]["reason"] = "failed", f"analysis: {exc}"
            log.error("%s: not analysed: %s", metas[k]["structure_id"], exc)
    ok = [k for k in ok if k in rdfs]
    r = rdfs[ok[0]].r if ok else np.empty(0)

    # 2. cutoffs per composition from the replica-averaged partials
    def comp_key(m):  # composition_index, or the formula when frames do not carry one
        return (m["composition_index"], m["formula"])

    by_comp: dict[tuple, list[int]] = defaultdict(list)
    for k in ok:
        by_comp[comp_key(metas[k])].append(k)
    override = to_cutoff_map(settings.cutoffs)
    cutoffs: dict[tuple, dict[tuple[str, str], float]] = {}
    for ci, ks in by_comp.items():
        cmap = {}
        for a, b in species_pairs(elements):
            name = pair_name(a, b)
            if (a, b) in override:
                cmap[(a, b)] = override[(a, b)]
                continue
            g_mean = np.mean([rdfs[k].partials[name] for k in ks], axis=0)
            cmap[(a, b)] = first_minimum(r, g_mean, settings.dr, settings.smoothing_A)[1]
        cutoffs[ci] = cmap

    # 3. scattering inputs (optional)
    b_table, b_source = load_scattering_lengths(settings.scattering_lengths)
    exp = None
    if settings.experimental_fq:
        try:
            exp = load_experimental_fq(settings.experimental_fq)
        except FileNotFoundError:
            log.warning("experimental F(Q) %s not found: no R_chi", settings.experimental_fq)
    q = settings.q
    notes: dict[str, Any] = {"scattering_lengths_source": b_source, "elements": elements,
                             "pairs": pairs, "sq_skipped": ""}

    rdf_parts, dist_rows, sq_parts, rows = [], [], [], []
    for k, (atoms, m) in enumerate(zip(frames, metas, strict=True)):
        n = len(atoms)
        syms = atoms.get_chemical_symbols()
        fractions = {el: syms.count(el) / n for el in elements}
        row: dict[str, Any] = {**m, "n_atoms": n}
        row.update({f"x_{el}": fractions[el] for el in elements})
        if m["status"] != "ok":
            rows.append(row)
            continue
        g = rdfs[k]
        row["analysed_frames"] = len(views[k])
        row["analysed_from"] = "final" if views[k][0] is atoms else "samples"
        key = {x: m[x] for x in ("structure_id", "composition_index", "replica", "label")}
        for name, arr in g.as_dict().items():
            rdf_parts.append(pd.DataFrame({**key, "pair": name, "r_A": r, "g": arr}))
        e_at = _energy_per_atom(atoms)
        ef, why = formation_energy_per_atom(e_at, fractions, refs, m["potential"])
        row.update({
            "volume_A3": float(abs(atoms.get_volume())), "density_g_cm3": density_g_cm3(atoms),
            "number_density_A3": n / float(abs(atoms.get_volume())),
            "half_min_width_A": half_min_width(atoms.cell[:]),
            "energy_per_atom_eV": e_at, "formation_energy_per_atom_eV": ef,
            "formation_energy_reason": why,
            "reference_potential": (refs or {}).get("potential") or "",
        })
        cmap = cutoffs[comp_key(m)]
        for a, b in species_pairs(elements):
            name = pair_name(a, b)
            rpk, _ = first_minimum(r, g.partials[name], settings.dr, settings.smoothing_A)
            row[f"rpeak_{_col(name)}"] = rpk
            row[f"rcut_{_col(name)}"] = cmap[(a, b)]
        finite = [v for v in cmap.values() if np.isfinite(v)]
        cns, angles = {}, {}
        triplets = (parse_triplets(settings.angle_triplets) if settings.angle_triplets
                    else default_triplets(cmap))
        for view in views[k] if finite else []:  # CN and angles pooled over the frames
            nb = _typed_neighbours(view, max(finite))
            for pair, cn in coordination_numbers(view, cmap, neighbours=nb).items():
                cns.setdefault(pair, []).append(cn)
            for t, th in bond_angles(view, triplets, cmap, neighbours=nb).items():
                angles.setdefault(t, []).append(th)
        cns = {pair: np.concatenate(v) for pair, v in cns.items()}
        angles = {t: np.concatenate(v) for t, v in angles.items()}
        for a in elements:
            for b in elements:
                col = f"cn_{a}_{b}"
                cn = cns.get((a, b))
                row[col] = float(np.mean(cn)) if cn is not None and len(cn) else float("nan")
                if cn is not None and len(cn):
                    kk, frac = cn_distribution(cn, settings.max_cn)
                    dist_rows.append(pd.DataFrame({**key, "kind": "cn", "key": col,
                                                   "x": kk.astype(float), "value": frac}))
        for t in triplets:
            name = "-".join(t)
            th = angles.get(t, np.empty(0))
            x, p = angle_histogram(th, settings.angle_bin_deg)
            row[f"angle_mode_{_col(name)}_deg"] = histogram_mode(x, p, settings.angle_smoothing_deg)
            row[f"angle_mean_{_col(name)}_deg"] = float(th.mean()) if th.size else float("nan")
            if th.size:
                dist_rows.append(pd.DataFrame({**key, "kind": "angle", "key": name,
                                               "x": x, "value": p}))
        # neutron F(Q)
        try:
            f_q, s_q = neutron_fq(g, q, b_table, settings.lorch, b_source)
        except MissingScatteringLength as err:
            notes["sq_skipped"] = str(err)
            row["rchi_fq_exp"] = float("nan")
        else:
            sq_parts.append(pd.DataFrame({**key, "Q_invA": q, "S": s_q, "F_barn": f_q}))
            row["rchi_fq_exp"] = (
                r_chi(q, f_q, exp["Q_invA"].to_numpy(), exp["F_Q"].to_numpy(),
                      (max(settings.rchi_q_min, 2 * np.pi / (2 * row["half_min_width_A"])),
                       settings.rchi_q_max))
                if exp is not None and is_silica(fractions) else float("nan"))
        rows.append(row)
    if notes["sq_skipped"]:
        log.warning("neutron S(Q) not computed: %s", notes["sq_skipped"])

    def cat(parts, cols):
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)

    base = ["structure_id", "composition_index", "replica", "label"]
    props = pd.DataFrame(rows)
    return AnalysisResult(
        rdf=cat(rdf_parts, [*base, "pair", "r_A", "g"]),
        properties=props,
        distributions=cat(dist_rows, [*base, "kind", "key", "x", "value"]),
        sq=cat(sq_parts, [*base, "Q_invA", "S", "F_barn"]),
        notes=notes,
    )


def replica_average(rdf_table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of g(r) over the replicas of each composition, per pair:
    columns ``composition_index, label, pair, r_A, g_mean, g_std, n_structures``."""
    keys = ["composition_index", "label", "pair", "r_A"]
    grp = rdf_table.groupby(keys, sort=True)["g"]
    out = grp.agg(g_mean="mean", g_std=lambda x: x.std(ddof=0), n_structures="count")
    return out.reset_index()
