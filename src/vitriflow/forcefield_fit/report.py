"""Report section of a force-field fit: the state point, R_chi per round with the best so far, the
fitted partial g(r) (and, for a measured F(Q), the neutron F(Q)) against the reference and the
published sets at the same state point, the parameters beside BKS and CHIK, and the bond-angle
distributions as the a-posteriori check (not fitted)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.report import (
    esc,
    figure_html,
    headline,
    note_html,
    panel_grid,
    table_html,
)
from vitriflow.report import (
    section_html as _section,
)

__all__ = ["angle_figure", "fq_figure", "parameter_table", "pdf_figure", "rchi_figure",
           "section_html", "state_point_text", "write_section_html"]

TITLE = "Force-field fit"
_STYLE = {"reference": ("k", "-", 2.2), "fit": ("C3", "-", 1.4)}
_COMPARE_COLOURS = ("C0", "C2", "C4", "C5", "C6")


def _search(history: pd.DataFrame) -> pd.DataFrame:
    return history[history["kind"].isin(("initial", "bo", "refine"))]


def _best(history: pd.DataFrame) -> pd.Series:
    ok = _search(history)
    ok = ok[ok["status"] == "ok"]
    return ok.sort_values(["cost", "eval_id"], kind="stable").iloc[0]


def rchi_figure(history: pd.DataFrame) -> str:
    """R_chi of every evaluation by round (failed ones at their penalty, as crosses), the best
    so far, and the published sets as horizontal lines."""
    fig, (ax,) = panel_grid(1, size=(6.0, 3.6))
    search = _search(history)
    ok = search["status"] == "ok"
    ax.scatter(search.loc[ok, "round"], search.loc[ok, "cost"], s=14, alpha=0.6, label="evaluated")
    if (~ok).any():
        ax.scatter(search.loc[~ok, "round"], search.loc[~ok, "cost"], marker="x", color="0.5",
                   s=18, label="failed (penalty)")
    rounds = sorted(search["round"].unique())
    best = [search.loc[ok & (search["round"] <= r), "cost"].min() for r in rounds]
    ax.step(rounds, best, where="post", color="C3", lw=2, label="best so far")
    compare = history[(history["kind"] == "compare") & (history["status"] == "ok")]
    for k, row in enumerate(compare.itertuples()):
        ax.axhline(row.cost, color=_COMPARE_COLOURS[k % len(_COMPARE_COLOURS)], ls="--", lw=1,
                   label=f"{row.name}")
    ax.set_yscale("log")
    ax.set_xlabel("round (1 = initial design)")
    ax.set_ylabel("R_chi")
    ax.legend(fontsize=7)
    return figure_html(fig, "R_chi of every candidate by round; red: best so far; dashed: "
                            "published sets at the same state point and settings.")


def pdf_figure(reference, curves: pd.DataFrame, history: pd.DataFrame) -> str:
    """Partial g(r) (or F(Q) reference) of the fit against the reference and the published sets."""
    best = _best(history)
    pairs = sorted(curves.loc[curves["eval_id"] == best["eval_id"], "pair"].unique())
    compare = history[(history["kind"] == "compare") & (history["status"] == "ok")]
    ref_curves = reference.curves() if reference.kind != "neutron_fq" else {}
    fig, axes = panel_grid(len(pairs), ncols=3)
    for ax, pair in zip(axes, pairs, strict=True):
        if pair in ref_curves:
            r, g = ref_curves[pair]
            c, ls, lw = _STYLE["reference"]
            ax.plot(r, g, color=c, ls=ls, lw=lw, label="reference")
        for k, row in enumerate(compare.itertuples()):
            sel = (curves["eval_id"] == row.eval_id) & (curves["pair"] == pair)
            ax.plot(curves.loc[sel, "r_A"], curves.loc[sel, "g"], lw=1, ls="--",
                    color=_COMPARE_COLOURS[k % len(_COMPARE_COLOURS)], label=row.name)
        sel = (curves["eval_id"] == best["eval_id"]) & (curves["pair"] == pair)
        c, ls, lw = _STYLE["fit"]
        ax.plot(curves.loc[sel, "r_A"], curves.loc[sel, "g"], color=c, ls=ls, lw=lw,
                label=f"fit (R_chi {best['cost']:.3g})")
        ax.set_title(pair)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
    if axes:
        axes[0].legend(fontsize=7)
    what = ("the reference" if ref_curves else
            "each other (the reference is a total F(Q), compared in Q)")
    return figure_html(fig, f"Partial g(r) of the fitted potential against {what} and the "
                            "published sets, all at the fit's state point.")


def state_point_text(section: Mapping[str, Any]) -> str:
    """What every candidate and published set simulated, in a sentence (validated section)."""
    sp = section["state_point"]
    fs = sp["timestep_fs"] * 1e-3
    cells = (f"{sp['replicas']} cells of about {sp['atoms_per_cell']} atoms of "
             f"{sp['composition']} at {sp['density_g_cm3']:g} g/cm³ (NVT)")
    if sp["melt_temperature_K"] is None:
        run = (f"liquid at {sp['temperature_K']:g} K: {sp['equilibration_steps'] * fs:g} ps "
               f"equilibrated, {sp['sampling_steps'] * fs:g} ps sampled")
    else:
        rate = ((sp["melt_temperature_K"] - sp["temperature_K"])
                / max(sp["quench_steps"] * fs, 1e-12))
        run = (f"glass: {sp['equilibration_steps'] * fs:g} ps at {sp['melt_temperature_K']:g} K, "
               f"quenched to {sp['temperature_K']:g} K in {sp['quench_steps'] * fs:g} ps "
               f"({rate:.0f} K/ps), {sp['sampling_steps'] * fs:g} ps sampled")
    return f"Every candidate and published set: {cells}; {run}."


def _rdf_from_curves(curves: pd.DataFrame, eval_id: int, counts: Mapping[str, int],
                     volume: float, r_max: float, dr: float):
    """The averaged g(r) of one evaluation, rebuilt from the curves table (the fit's r grid)."""
    from vitriflow.analysis.rdf import RDF, r_grid

    edges, r = r_grid(r_max, dr)
    sel = curves[curves["eval_id"] == eval_id]
    partials = {pair: g["g"].to_numpy(float) for pair, g in sel.groupby("pair")}
    n = sum(counts.values())
    total = np.zeros_like(r)
    for pair, g in partials.items():  # c_a c_b over ordered pairs, as vitriflow.analysis.rdf
        a, b = pair.split("-")
        total += (1.0 if a == b else 2.0) * counts[a] * counts[b] / n**2 * g
    return RDF(r=r, edges=edges, partials=partials, total=total, counts=dict(counts),
               volume=float(volume))


def fq_figure(reference, curves: pd.DataFrame, history: pd.DataFrame,
              section: Mapping[str, Any]) -> str:
    """Neutron F(Q) of the fit and the published sets against a measured F(Q) reference, at the
    state point of the validated ``section``."""
    from vitriflow.analysis.scattering import neutron_fq
    from vitriflow.forcefield_fit.space import build_space, cell_length

    counts = build_space(section).counts
    volume = cell_length(counts, section["state_point"]["density_g_cm3"]) ** 3
    grid = (section["reference"]["r_max"], section["reference"]["dr"])
    best = _best(history)
    compare = history[(history["kind"] == "compare") & (history["status"] == "ok")]
    fig, axes = panel_grid(1, ncols=1)
    ax = axes[0]
    c, ls, lw = _STYLE["reference"]
    ax.plot(reference.q, reference.f_q, color=c, ls=ls, lw=lw, label="measured")
    lines = [(row.eval_id, row.name, row.cost, (_COMPARE_COLOURS[k % len(_COMPARE_COLOURS)],
                                                 "--", 1)) for k, row in
             enumerate(compare.itertuples())]
    lines.append((int(best["eval_id"]), "fit", best["cost"], _STYLE["fit"]))
    for eval_id, name, cost, (c, ls, lw) in lines:
        f, _ = neutron_fq(_rdf_from_curves(curves, eval_id, counts, volume, *grid), reference.q,
                          reference.scattering_lengths, source=reference.scattering_source)
        ax.plot(reference.q, f, color=c, ls=ls, lw=lw, label=f"{name} (R_chi {cost:.3g})")
    ax.set_xlabel("Q (1/Å)")
    ax.set_ylabel("F(Q) (barn/sr/atom)")
    ax.legend(fontsize=7)
    lo, hi = reference.q_range
    return figure_html(fig, f"Neutron F(Q) of the fitted potential and the published sets against "
                            f"the measurement, over the R_chi range {lo:g}-{hi:g} 1/Å.")


def parameter_table(history: pd.DataFrame, names: Sequence[str],
                    others: Sequence[str] = ("bks", "chik")) -> str:
    """The fitted free parameters beside the published sets (same conventions: rho = 1/B)."""
    from vitriflow.forcefield_fit.space import parse_name
    from vitriflow.potentials.classical_params import PARAMETER_SETS

    best = _best(history)
    rows = []
    for name in names:
        kind, target = parse_name(name)
        row: dict[str, Any] = {"parameter": name, "fit": float(best[name])}
        for other in others:
            p = PARAMETER_SETS[other]
            if kind == "q":
                row[other] = float(p.charges.get(target, math.nan))
            elif target in p.pairs:
                a, b, c, _ = p.pairs[target]
                row[other] = {"A": a, "rho": 1.0 / b if b else math.nan, "C": c}[kind]
            else:
                row[other] = math.nan
        rows.append(row)
    terms = [c for c in history.columns if c.startswith("term_")]
    compare = history[history["kind"] == "compare"].set_index("name")
    for col in ["cost", *terms]:
        label = "R_chi" if col == "cost" else f"R_chi {col[5:]}"
        row = {"parameter": label, "fit": float(best[col])}
        for other in others:
            row[other] = float(compare.loc[other, col]) if other in compare.index else math.nan
        rows.append(row)
    return table_html(pd.DataFrame(rows), "Fitted parameters beside the published sets (R_chi "
                      "rows: the published sets simulated at the same state point).")


def angle_figure(angles: pd.DataFrame, history: pd.DataFrame, reference_angles=None) -> str:
    """Bond-angle distributions of the fit and the published sets (not part of the cost)."""
    if angles.empty:
        return note_html("No bond-angle distributions were recorded.")
    best = _best(history)
    compare = history[(history["kind"] == "compare") & (history["status"] == "ok")]
    triplets = sorted(angles.loc[angles["eval_id"] == best["eval_id"], "triplet"].unique())
    if not triplets:
        return note_html("The fitted potential has no bond angles within its first shells.")
    fig, axes = panel_grid(len(triplets), ncols=2)
    for ax, t in zip(axes, triplets, strict=True):
        if reference_angles is not None and t in reference_angles:
            x, p = reference_angles[t]
            ax.plot(x, p, color="k", lw=2.2, label="reference")
        for k, row in enumerate(compare.itertuples()):
            sel = (angles["eval_id"] == row.eval_id) & (angles["triplet"] == t)
            ax.plot(angles.loc[sel, "theta_deg"], angles.loc[sel, "p"], ls="--", lw=1,
                    color=_COMPARE_COLOURS[k % len(_COMPARE_COLOURS)], label=row.name)
        sel = (angles["eval_id"] == best["eval_id"]) & (angles["triplet"] == t)
        ax.plot(angles.loc[sel, "theta_deg"], angles.loc[sel, "p"], color="C3", lw=1.4, label="fit")
        ax.set_title(t)
        ax.set_xlabel("angle (deg)")
        ax.set_ylabel("P (1/deg)")
    axes[0].legend(fontsize=7)
    return figure_html(fig, "Partial bond-angle distributions (first-shell cutoffs at each "
                            "potential's own g(r) minimum): an a-posteriori check, not fitted.")


def section_html(workdir: str | Path, reference, names: Sequence[str] | None = None,
                 reference_angles: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 section: Mapping[str, Any] | None = None) -> str:
    """The report section of the fit in ``workdir`` (``optimize.run_fit`` outputs), with its
    headline card: the fitted R_chi, green when it beats every published set simulated alongside.
    ``section`` (the validated ``forcefield_fit`` section) adds the state point and, for a
    measured F(Q), the F(Q) figure."""
    from vitriflow.forcefield_fit.optimize import read_history

    history, curves, angles, _ = read_history(workdir)
    if names is None:
        names = [c[2:] for c in history.columns if c.startswith("u_")]
    best = _best(history)
    compare = history[(history["kind"] == "compare") & (history["status"] == "ok")]
    baseline = float(compare["cost"].min()) if len(compare) else math.nan
    beats = bool(len(compare)) and float(best["cost"]) < baseline
    search = _search(history)
    detail = (f"best of {len(search)} candidates ({int((search['status'] != 'ok').sum())} failed); "
              + (f"best published set {baseline:.3g}" if len(compare) else "no published set run"))
    card = headline("Force-field fit R_chi", f"{best['cost']:.3g}", detail,
                    "good" if beats else ("bad" if len(compare) else "neutral"))
    intro = (f"<p>Reference: <code>{esc(reference.source)}</code> ({esc(reference.kind)}); "
             f"free parameters: {esc(', '.join(names))}. The fitted parameter file is "
             f"<code>{esc(Path(workdir) / 'fitted.yaml')}</code> (potential <code>buckingham</code>"
             ", <code>potential_options: {parameters: ...}</code>).</p>")
    if section is not None:
        intro += f"<p>{esc(state_point_text(section))}</p>"
    edge = [n for n in names if f"u_{n}" in best and not 0.01 < float(best[f"u_{n}"]) < 0.99]
    if edge:  # the optimum may lie outside the searched box
        intro += note_html(f"{', '.join(edge)} ended at the edge of its bounds: the best set "
                           "may lie beyond them; widen forcefield_fit.free and rerun (the history "
                           "resumes only for the same settings).")
    parts = [intro, rchi_figure(history)]
    if section is not None and reference.kind == "neutron_fq":
        parts.append(fq_figure(reference, curves, history, section))
    parts += [pdf_figure(reference, curves, history),
             parameter_table(history, names), angle_figure(angles, history, reference_angles)]
    return _section(TITLE, *parts, anchor="forcefield-fit", headlines=[card])


def write_section_html(path: str | Path, workdir: str | Path, reference, **kwargs) -> None:
    """Write the section fragment (as ``vitriflow.report.write_section`` does) atomically."""
    from vitriflow.io import write_text

    write_text(section_html(workdir, reference, **kwargs), path)
