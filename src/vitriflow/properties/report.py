"""Report section 45: glass properties from the MD, and how they compare with measured glasses."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from vitriflow.report import figure_html, headline, note_html, pyplot, table_html, write_section

TITLE = "Properties vs experiment"
LABELS = {"density": "density (g/cm³)", "bulk_modulus": "bulk modulus K (GPa)",
          "shear_modulus": "shear modulus G (GPa)", "elastic_modulus": "Young's modulus E (GPa)",
          "poisson_ratio": "Poisson's ratio", "tg": "Tg (K)", "cte": "linear CTE (1e-6/K)"}


def parity_figure(parity: pd.DataFrame):
    """MD mean ± replica spread against the measured value, one panel per property."""
    from vitriflow.report import panel_grid

    have = [p for p in LABELS if p in set(parity.loc[parity["exp_value"].notna(), "property"])]
    fig, axes = panel_grid(len(have), ncols=4, size=(3.2, 3.0))
    for ax, prop in zip(axes, have, strict=True):
        g = parity[(parity["property"] == prop) & parity["exp_value"].notna()]
        for pot, gp in g.groupby("potential"):
            ax.errorbar(gp["exp_value"], gp["md_mean"], yerr=gp["md_std"].fillna(0), fmt="o",
                        ms=4, capsize=2, label=pot)
        lo = float(np.nanmin([g["exp_value"].min(), (g["md_mean"] - g["md_std"].fillna(0)).min()]))
        hi = float(np.nanmax([g["exp_value"].max(), (g["md_mean"] + g["md_std"].fillna(0)).max()]))
        pad = 0.05 * (hi - lo) + 1e-9
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.7)
        ax.set_xlabel(f"measured {LABELS[prop]}", fontsize=8)
        ax.set_ylabel(f"MD {LABELS[prop]}", fontsize=8)
    if axes:
        axes[0].legend(fontsize=7, frameon=False)
        fig.tight_layout()
    return fig


def scan_figure(curves: pd.DataFrame, thermal: pd.DataFrame, max_structures: int = 6):
    """V(T) per atom of the first structures with their two-line fit break."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for sid, g in list(curves.groupby("structure_id", sort=False))[:max_structures]:
        ax.plot(g["T_mean_K"], g["volume_per_atom_A3"], "o-", ms=3, lw=0.8, label=sid)
        tg = thermal.loc[thermal["structure_id"] == sid, "tg_K"]
        if len(tg) and np.isfinite(tg.iloc[0]):
            ax.axvline(float(tg.iloc[0]), lw=0.6, ls="--", color=ax.lines[-1].get_color())
    ax.set_xlabel("T (K)")
    ax.set_ylabel("volume (Å³/atom)")
    ax.legend(fontsize=6, frameon=False)
    return fig


def write_properties_section(path: str | os.PathLike, tables: Mapping[str, pd.DataFrame],
                             targets: Mapping[str, float]) -> None:
    """Section 45 from the comparison tables (``parity``, ``tg_rank``, ``nbo``, ``summary``,
    ``thermal``, ``curves``, ``transport``)."""
    parity, nbo, summary = tables["parity"], tables["nbo"], tables["summary"]
    parts = ["<p>Properties of the quenched glasses computed from the MD (one job per system, "
             "batched over its structures): network structure, elastic moduli of the relaxed "
             "glasses (relaxed-ion finite strains, Voigt–Reuss–Hill), a stepwise NPT cooling scan "
             "(Tg from a two-line fit of V(T), CTE below Tg) and self-diffusion in the melt, each "
             "set against measured glasses within the configured tolerance (i-Melt's NKCMAS "
             "database; vitreous silica: Pabst & Gregorová 2013). Spread: standard deviation over "
             "replicas.</p>"]
    if len(summary):
        parts.append(table_html(summary, "MD properties per glass (mean over replicas).",
                                float_format="{:.4g}"))
    measured = parity[parity["exp_value"].notna()] if len(parity) else parity
    if len(measured):
        parts.append(figure_html(parity_figure(parity),
                                 "MD against measured values (line: y = x)."))
        parts.append(table_html(measured, "Every MD property with a measured value for the same "
                                          "composition (error = MD − measured).",
                                float_format="{:.4g}"))
    else:
        parts.append(note_html("No measured value lies within the tolerance of any composition of "
                               "this run."))
    if len(tables["tg_rank"]):
        parts.append(table_html(tables["tg_rank"], "Tg compared by rank across each potential's "
                                                   "series (the MD cooling rate is many orders "
                                                   "faster than a laboratory's).",
                                float_format="{:.3g}"))
    if len(nbo):
        parts.append(table_html(nbo, "Non-bridging oxygens per tetrahedron: the MD glasses against "
                                     "the charge-balance value of their composition.",
                                float_format="{:.3g}"))
    if len(tables["curves"]):
        rate = tables["thermal"]["cooling_rate_K_per_ps"].iloc[0]
        parts.append(figure_html(scan_figure(tables["curves"], tables["thermal"]),
                                 f"Cooling scans at {rate:.3g} K/ps: volume per atom; dashed: Tg."))
    if len(tables["transport"]):
        cols = [c for c in tables["transport"].columns
                if c in ("structure_id", "transport_T_K", "eta_Pa_s", "eta_note", "transport_note")
                or (c.startswith("D_") and c.endswith("_m2_s"))]
        parts.append(table_html(tables["transport"][cols],
                                "Self-diffusion coefficients in the melt (m²/s) and the Green–Kubo "
                                "viscosity where its integral converged.",
                                float_format="{:.3g}"))
    write_section(path, TITLE, *parts,
                  headlines=property_headlines(parity, tables["tg_rank"], targets))


def property_headlines(parity: pd.DataFrame, tg_rank: pd.DataFrame,
                       targets: Mapping[str, float]) -> list[dict[str, str]]:
    """Cards: density and the elastic moduli (E, K, G) against measured glasses, green when
    every glass is within its target; Tg by rank across each potential's series."""
    cards = []
    m = parity[parity["exp_value"].notna()] if len(parity) else parity
    for label, props, target in (
        ("Density vs experiment", ["density"], targets["density"]),
        ("Elastic moduli vs experiment", ["elastic_modulus", "bulk_modulus", "shear_modulus"],
         targets["modulus"]),
    ):
        g = m[m["property"].isin(props)] if len(m) else m
        if not len(g):
            continue
        rel = 100 * g["rel_error"].abs()
        worst = g.loc[rel.idxmax()]
        cards.append(headline(label, f"mean |Δ| {rel.mean():.1f} %",
                              f"{len(g)} comparisons; worst {rel.max():.1f} % "
                              f"({worst['property']}, {worst['composition']}, "
                              f"{worst['potential']}); target {target:g} %",
                              "good" if rel.max() <= target else "bad"))
    for row in tg_rank.itertuples():
        if np.isfinite(row.rho):
            cards.append(headline(f"Tg rank vs experiment, {row.potential}", f"ρ = {row.rho:.2f}",
                                  f"Spearman over {int(row.n)} glasses; "
                                  f"target {targets['tg_rho']:g}",
                                  "good" if row.rho >= targets["tg_rho"] else "bad"))
    return cards
