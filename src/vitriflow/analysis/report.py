"""Report section of the analysis stage (results/report/sections/40_analysis.html).

Per system: partial RDF panels (replica mean ± standard deviation per composition),
coordination-number and bond-angle distributions, a per-composition summary table, the
energy–composition diagram of binary systems (Aykol et al., Fig. 3 style: formation energy
per atom, or energy per atom where no same-potential elemental references exist) and, for
Si–O systems at the SiO2 composition, simulated vs experimental (NIMROD) neutron F(Q) with
Wright's R_chi.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitriflow.analysis.coordination import ANIONS, histogram_mode, smooth
from vitriflow.analysis.scattering import load_experimental_fq, r_chi
from vitriflow.analysis.system import replica_average
from vitriflow.report import (
    figure_html,
    headline,
    note_html,
    panel_grid,
    pyplot,
    table_html,
    write_section,
)

__all__ = ["SystemTables", "composition_summary", "write_analysis_section"]


@dataclass
class SystemTables:
    name: str
    rdf: pd.DataFrame
    properties: pd.DataFrame
    distributions: pd.DataFrame
    sq: pd.DataFrame


def _colors(n: int):
    plt = pyplot()
    cmap = plt.get_cmap("viridis")
    return [cmap(v) for v in (np.linspace(0.05, 0.9, n) if n > 1 else [0.3])]


def _comp_labels(df: pd.DataFrame) -> list[tuple[int, str]]:
    if df.empty:
        return []
    pairs = df[["composition_index", "label"]].drop_duplicates().sort_values("composition_index")
    return list(pairs.itertuples(index=False, name=None))


def smoothed_rdf(rdf_table: pd.DataFrame, sigma_A: float) -> pd.DataFrame:
    """Each structure's g(r) per pair Gaussian-smoothed (sigma in Å) before replica averaging,
    so that the band is the replica spread of the curves as drawn. A single frame of a
    100-atom cell gives a histogram whose rare pairs are spikes bin by bin."""
    if sigma_A <= 0 or rdf_table.empty:
        return rdf_table
    out = rdf_table.sort_values(["structure_id", "pair", "r_A"]).copy()
    r = np.unique(out["r_A"])
    dr = float(r[1] - r[0]) if len(r) > 1 else 1.0
    out["g"] = out.groupby(["structure_id", "pair"], sort=False)["g"].transform(
        lambda g: smooth(g.to_numpy(), dr, sigma_A))
    return out


def rdf_figure(t: SystemTables, sigma_A: float = 0.0):
    pairs = [p for p in t.rdf["pair"].unique() if p != "total"] + ["total"]
    comps = _comp_labels(t.rdf)
    avg = replica_average(smoothed_rdf(t.rdf, sigma_A))
    fig, axes = panel_grid(len(pairs))
    for ax, pair in zip(axes, pairs, strict=True):
        sub = avg[avg["pair"] == pair]
        for (ci, label), col in zip(comps, _colors(len(comps)), strict=True):
            s = sub[sub["composition_index"] == ci]
            r, mean, std = s["r_A"], s["g_mean"], s["g_std"]
            if not mean.any():  # the pair does not exist in this glass (e.g. Al-O of a silicate)
                continue
            ax.plot(r, mean, color=col, lw=1.0, label=label)
            ax.fill_between(r, mean - std, mean + std, color=col, alpha=0.25, lw=0)
        ax.axhline(1.0, color="0.6", lw=0.6, ls=":")
        ax.set_title(pair, fontsize=9)
        ax.set_xlabel("r (Å)", fontsize=8)
        ax.set_ylabel("g(r)", fontsize=8)
        ax.tick_params(labelsize=7)
    if comps:  # on the total g(r), the one panel every glass has
        axes[-1].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def _cn_keys(keys) -> list[str]:
    """CN columns worth a panel: anion around cation where anions exist, else unlike pairs."""
    pairs = [(k, *k.split("_")[1:]) for k in keys]
    species = {el for _, a, b in pairs for el in (a, b)}
    if species & ANIONS:
        return sorted(k for k, a, b in pairs if a not in ANIONS and b in ANIONS)
    return sorted(k for k, a, b in pairs if a != b)


def _cn_title(col: str) -> str:
    """``cn_Si_O`` (O around Si) -> ``CN O around Si``."""
    _, a, b = col.split("_")
    return f"CN {b} around {a}"


def _dist_figure(t: SystemTables, kind: str, keys: Sequence[str], xlabel: str, xlim=None,
                 sigma: float = 0.0):
    """CN (markers) or angle (lines; Gaussian-smoothed by ``sigma`` degrees) distributions."""
    comps = _comp_labels(t.distributions)
    fig, axes = panel_grid(len(keys))
    d = t.distributions[t.distributions["kind"] == kind]
    for ax, key in zip(axes, keys, strict=True):
        sub = d[d["key"] == key]
        for (ci, label), col in zip(comps, _colors(len(comps)), strict=True):
            s = sub[sub["composition_index"] == ci].groupby("x")["value"].mean()
            if s.empty:
                continue
            if sigma > 0 and len(s) > 1:
                s = pd.Series(smooth(s.to_numpy(float), np.diff(s.index).min(), sigma),
                              index=s.index)
            style = {"marker": "o", "ms": 3} if kind == "cn" else {}
            ax.plot(s.index, s.values, color=col, lw=1.0, label=label, **style)
        ax.set_title(_cn_title(key) if kind == "cn" else key, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("fraction" if kind == "cn" else "P(θ) (1/deg)", fontsize=8)
        ax.tick_params(labelsize=7)
        if xlim:
            ax.set_xlim(*xlim)
    if comps:
        axes[0].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def composition_summary(props: pd.DataFrame, distributions: pd.DataFrame | None = None,
                        angle_smoothing_deg: float = 3.0) -> pd.DataFrame:
    """One row per composition: counts of ok/failed, means (± std) of the main properties.

    Angle modes are taken from the replica-pooled distribution when ``distributions`` is
    given (a 100-atom cell alone has only ~200 O-Si-O angles), else averaged per structure.
    """
    if props.empty:
        return props
    rows = []
    cn_cols = _cn_keys([c for c in props.columns if c.startswith("cn_")])
    ang_cols = [c for c in props.columns if c.startswith("angle_mode_")]
    for (_ci, label), grp in props.groupby(["composition_index", "label"], sort=True):
        ok = grp[grp["status"] == "ok"]
        row = {"composition": label, "ok": len(ok), "failed": len(grp) - len(ok)}

        def ms(col, ok=ok):
            if col not in ok or ok[col].isna().all():
                return np.nan, np.nan
            return ok[col].mean(), ok[col].std(ddof=0)

        for col, name in [("density_g_cm3", "density g/cm³"), ("energy_per_atom_eV", "E eV/atom"),
                          ("formation_energy_per_atom_eV", "E_f eV/atom")]:
            m, s = ms(col)
            row[name], row[name + " ±"] = m, round(s, 6) if np.isfinite(s) else s
        for col in cn_cols:
            row[_cn_title(col)] = ms(col)[0]
        for col in ang_cols:
            key = col[len("angle_mode_"):-len("_deg")].replace("_", "-")
            name = f"mode {key} °"
            row[name] = ms(col)[0]
            if distributions is not None and not distributions.empty:
                d = distributions[(distributions["kind"] == "angle") & (distributions["key"] == key)
                                  & (distributions["composition_index"] == _ci)]
                if not d.empty:
                    pooled = d.groupby("x")["value"].mean()
                    row[name] = histogram_mode(pooled.index.to_numpy(), pooled.to_numpy(),
                                               angle_smoothing_deg)
        if "rchi_fq_exp" in ok and ok["rchi_fq_exp"].notna().any():
            row["R_chi F(Q)"] = ok["rchi_fq_exp"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def energy_composition_figure(t: SystemTables):
    """(figure, caption) of energy vs composition for a binary system, or (None, reason)."""
    p = t.properties
    ok = p[p["status"] == "ok"] if not p.empty else p
    xcols = sorted(c for c in p.columns if c.startswith("x_"))
    if len(xcols) != 2:
        return None, f"{t.name}: {len(xcols)} elements, energy–composition diagram is for binaries"
    if ok.empty:
        return None, f"{t.name}: no successful structures"
    use_ef = ok["formation_energy_per_atom_eV"].notna().any()
    ycol = "formation_energy_per_atom_eV" if use_ef else "energy_per_atom_eV"
    if ok[ycol].notna().sum() == 0:
        return None, f"{t.name}: no energies in the quenched structures"
    xcol = xcols[1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    ax.scatter(ok[xcol], ok[ycol], s=12, color="#2d6a9f", alpha=0.6, label="replicas")
    mean = ok.groupby(xcol)[ycol].mean()
    ax.plot(mean.index, mean.values, "o-", color="#17324d", ms=4, label="mean")
    if use_ef:
        ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel(f"x({xcol[2:]})")
    ax.set_ylabel("formation energy (eV/atom)" if use_ef else "energy (eV/atom)")
    ax.set_title(t.name, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    if use_ef:
        cap = (f"{t.name}: formation energy of the amorphous structures vs composition, referenced "
               "to the potential's own elemental phases (cf. Aykol et al. Fig. 3).")
    else:
        why = (ok["formation_energy_reason"].dropna().iloc[0] if "formation_energy_reason" in ok
               else "")
        cap = (f"{t.name}: potential energy per atom vs composition (no formation energy: {why}).")
    return fig, cap


def fq_figure(t: SystemTables, exp: pd.DataFrame | None, q_range: tuple[float, float]):
    """(figure, caption, R_chi of the replica mean) for the SiO2 composition, or
    (None, why, nan)."""
    p = t.properties
    if p.empty or "rchi_fq_exp" not in p or t.sq.empty:
        return None, f"{t.name}: no neutron F(Q) computed", float("nan")
    sel = p[(p["status"] == "ok") & p["rchi_fq_exp"].notna()]
    if sel.empty:
        return None, f"{t.name}: no SiO2 structure with an F(Q) comparison", float("nan")
    sq = t.sq[t.sq["structure_id"].isin(sel["structure_id"])]
    g = sq.groupby("Q_invA")["F_barn"]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    rc = float("nan")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.fill_between(mean.index, mean - std, mean + std, color="#d9822b", alpha=0.3, lw=0)
    ax.plot(mean.index, mean.values, color="#d9822b", lw=1.2,
            label=f"simulation (mean of {len(sel)})")
    if exp is not None:
        lo = max(q_range[0], float(sel["half_min_width_A"].map(lambda h: np.pi / h).max()))
        rc = r_chi(mean.index.to_numpy(), mean.to_numpy(), exp["Q_invA"].to_numpy(),
                   exp["F_Q"].to_numpy(), (lo, q_range[1]))
        ax.plot(exp["Q_invA"], exp["F_Q"], color="k", lw=0.9, label="NIMROD (exp.)")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlim(0, float(mean.index.max()))
    ax.set_xlabel("Q (Å⁻¹)")
    ax.set_ylabel("F(Q) (barn sr⁻¹ atom⁻¹)")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    cap = (f"{t.name}: neutron-weighted total F(Q) (Faber–Ziman, Keen 2001 convention) of the SiO2 "
           f"structures vs the NIMROD vitreous-silica data; R_chi = {rc:.3f} over "
           f"{q_range[0]:g}–{q_range[1]:g} Å⁻¹ (replica mean)." if exp is not None else
           f"{t.name}: simulated F(Q); experimental data not available.")
    return fig, cap, rc


def write_analysis_section(
    out_path: str | os.PathLike, systems: Sequence[SystemTables],
    experimental_fq: str | None, q_range: tuple[float, float],
    notes: Mapping[str, str] | None = None, max_detailed: int | None = None,
    max_failed_rows: int = 200, rdf_smoothing_A: float = 0.0, angle_smoothing_deg: float = 0.0,
) -> None:
    """Write the analysis report fragment (also when there is nothing to show, saying why).

    The first ``max_detailed`` systems get figures; the rest (large scans) one summary row each.
    The figures draw g(r) and the angle distributions Gaussian-smoothed by the given widths
    (0 = raw histograms); the tables always hold the raw ones.
    """
    parts: list[str] = []
    if not systems:
        write_section(out_path, "Structure analysis",
                      note_html("No systems configured: nothing was analysed."))
        return
    exp = None
    if experimental_fq and os.path.isfile(experimental_fq):
        exp = load_experimental_fq(experimental_fq)
    parts.append(
        "<p>Partial radial distribution functions g<sub>ab</sub>(r) (Faber–Ziman normalisation), "
        "coordination numbers within the first minimum of g<sub>ab</sub>(r), bond-angle "
        "distributions, densities and energies of the quenched structures. Shaded bands: ± one "
        "standard deviation over replicas."
        + (f" Curves are Gaussian-smoothed for display (g(r): σ = {rdf_smoothing_A:g} Å; angles: "
           f"σ = {angle_smoothing_deg:g}°; <code>analysis.plot_smoothing_A</code>, "
           "<code>analysis.angle_smoothing_deg</code>); the tables in results/analysis/ hold the "
           "raw histograms." if rdf_smoothing_A > 0 or angle_smoothing_deg > 0 else "")
        + "</p>")
    for note in (notes or {}).values():
        if note:
            parts.append(note_html(note))
    failed_rows, brief_rows, cards = [], [], []
    for k, t in enumerate(systems):
        p = t.properties
        if max_detailed is not None and k >= max_detailed:
            ok = p[p["status"] == "ok"] if not p.empty else p
            brief_rows.append({
                "system": t.name, "structures": len(p), "ok": len(ok),
                "density g/cm³": ok["density_g_cm3"].mean() if len(ok) else np.nan,
                "E_f eV/atom": ok["formation_energy_per_atom_eV"].mean()
                if len(ok) and "formation_energy_per_atom_eV" in ok else np.nan})
            if not p.empty:
                bad = p[p["status"] != "ok"]
                failed_rows.extend(
                    bad[["structure_id", "label", "status", "reason"]].to_dict("records"))
            continue
        parts.append(f"<h3>{t.name}</h3>")
        if p.empty or (p["status"] == "ok").sum() == 0:
            parts.append(note_html(f"{t.name}: no successful structures to analyse.", "bad"))
        else:
            parts.append(table_html(composition_summary(p, t.distributions),
                                    f"{t.name}: per-composition means over successful replicas"))
            parts.append(f"<p>{_frames_note(p)}</p>")
            parts.append(figure_html(rdf_figure(t, rdf_smoothing_A),
                                     f"{t.name}: partial and total g(r)"))
            cn_keys = _cn_keys(t.distributions.loc[t.distributions["kind"] == "cn", "key"].unique())
            if cn_keys:
                parts.append(figure_html(_dist_figure(t, "cn", cn_keys, "coordination number"),
                                         f"{t.name}: coordination-number distributions"))
            ang_keys = sorted(
                t.distributions.loc[t.distributions["kind"] == "angle", "key"].unique())
            if ang_keys:
                parts.append(figure_html(_dist_figure(t, "angle", ang_keys, "angle (deg)",
                                                      (40, 180), angle_smoothing_deg),
                                         f"{t.name}: bond-angle distributions"))
            fig, cap = energy_composition_figure(t)
            parts.append(figure_html(fig, cap) if fig is not None else note_html(cap))
            xcols = {c[2:] for c in p.columns if c.startswith("x_")}
            if xcols == {"O", "Si"}:
                fig, cap, rc = fq_figure(t, exp, q_range)
                parts.append(figure_html(fig, cap) if fig is not None else note_html(cap))
                if rc is not None and np.isfinite(rc):
                    cards.append(headline(f"{t.name}: neutron F(Q) vs vitreous silica",
                                          f"R_χ = {rc:.2f}",
                                          f"Wright's R_χ over {q_range[0]:g}–{q_range[1]:g} "
                                          "Å⁻¹ against NIMROD data, replica mean; lower is closer"))
        if not p.empty:
            bad = p[p["status"] != "ok"]
            failed_rows.extend(
                bad[["structure_id", "label", "status", "reason"]].to_dict("records"))
    if brief_rows:
        parts.append(table_html(pd.DataFrame(brief_rows),
                                f"{len(brief_rows)} further systems (figures for the first "
                                f"{max_detailed} only; tables in results/analysis/<system>/)"))
    if failed_rows:
        more = len(failed_rows) - max_failed_rows
        parts.append(table_html(pd.DataFrame(failed_rows[:max_failed_rows]),
                                "Structures not analysed (the reason says which stage failed)"
                                + (f"; {more} more not shown" if more > 0 else "")))
    else:
        parts.append("<p>All structures of all systems were analysed (none failed upstream or "
                     "here).</p>")
    write_section(out_path, "Structure analysis", *parts,
                  headlines=[*density_headline(systems), *cards])


def _frames_note(p: pd.DataFrame) -> str:
    """Which frames the structural averages come from (MD samples or the relaxed frame)."""
    ok = p[p["status"] == "ok"]
    if "analysed_from" not in ok or not (ok["analysed_from"] == "samples").any():
        return ("g(r), S(Q), coordination and angles of the relaxed final frame of each structure "
                "(set <code>sample_every</code> in the protocol to average over the last "
                "MD stage).")
    n = ok.loc[ok["analysed_from"] == "samples", "analysed_frames"]
    count = f"{int(n.min())}" if n.min() == n.max() else f"{int(n.min())}–{int(n.max())}"
    return (f"g(r), S(Q), coordination and angles averaged over {count} frames per structure along "
            "the last MD stage (the glass at that stage's temperature); density and energies of "
            "the relaxed final frame.")


def density_headline(systems: Sequence[SystemTables], shown: int = 4) -> list[dict[str, str]]:
    """One card: the range of glass densities over systems (replica means of the ok structures)."""
    means = {}
    for t in systems:
        ok = (t.properties[t.properties["status"] == "ok"] if not t.properties.empty
              else t.properties)
        if len(ok):
            means[t.name] = float(ok["density_g_cm3"].mean())
    if not means:
        return []
    lo, hi = min(means.values()), max(means.values())
    value = f"{lo:.2f} g/cm³" if len(means) == 1 else f"{lo:.2f}–{hi:.2f} g/cm³"
    detail = ", ".join(f"{n} {v:.3f}" for n, v in list(means.items())[:shown])
    more = len(means) - shown
    return [headline("Glass density (MD)", value,
                     detail + (f" and {more} more systems" if more > 0 else ""))]
