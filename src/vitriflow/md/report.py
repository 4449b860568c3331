"""Report section 30: melt-quench traces, failures and the cost of the MD jobs."""

from __future__ import annotations

import pandas as pd

from vitriflow.io import read_table
from vitriflow.report import figure_html, headline, pyplot, table_html, write_section


def md_section(path, systems, summaries, traces) -> None:
    """Melt-quench traces (Aykol et al. Fig. 2 style) and the failure table."""
    plt = pyplot()
    parts, failures, cost = [], [], []
    for name, sum_p, tr_p in zip(systems, summaries, traces, strict=True):
        summ, prov = read_table(sum_p)
        trace, _ = read_table(tr_p)
        failures.append(summ.loc[summ.status != "ok", ["structure_id", "formula", "reason"]])
        cost.append(_cost_row(name, summ, prov))
        if trace.empty:
            continue
        ok = summ.loc[summ.status == "ok", "structure_id"]
        first = ok.iloc[0] if len(ok) else trace["structure_id"].iloc[0]
        tr = trace[trace.structure_id == first]
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for stage, grp in tr.groupby("stage", sort=False):
            ax.plot(grp["time_ps"], grp["temperature_K"], ".-", ms=3, label=stage)
        ax.plot(tr["time_ps"], tr["target_K"], "k--", lw=0.8, label="target")
        ax.set_xlabel("time (ps)")
        ax.set_ylabel("T (K)")
        ax2 = ax.twinx()
        ax2.plot(tr["time_ps"], tr["energy_per_atom_eV"], color="0.5", lw=0.8)
        ax2.set_ylabel("E (eV/atom)", color="0.4")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"{name}: {first}", fontsize=9)
        parts.append(figure_html(fig, f"{name}: temperature and potential energy during the "
                                      f"protocol ({prov.get('potential', '')}, "
                                      f"{prov.get('device', '')})"))
    fail = pd.concat(failures, ignore_index=True) if failures else pd.DataFrame()
    if len(fail):
        parts.insert(0, table_html(fail, f"{len(fail)} structures failed; the reason says where "
                                         "(packing, the MD stability guard, which retries once "
                                         "with dt/2, or a relaxation)"))
    else:
        parts.insert(0, "<p>No structure failed in packing, MD or relaxation.</p>")
    cost_table = pd.DataFrame(cost)
    parts.insert(1, table_html(
        cost_table,
        "Cost of the MD jobs: wall time of each system's job (pre-relaxation, the protocol, "
        "retries and the final relaxation) and atom-steps per second over the protocol's steps; "
        "a resumed job's time covers only what was left, so its rate is not given.",
        float_format="{:.3g}"))
    write_section(path, "Melt-quench MD", *parts, headlines=md_headlines(cost_table))


def _cost_row(name: str, summ: pd.DataFrame, prov: dict) -> dict:
    wall, steps = prov.get("wall_s"), prov.get("atom_steps")
    timed = wall is not None and steps is not None and not prov.get("resumed", False)
    return {"system": name, "potential": prov.get("potential", ""),
            "device": prov.get("device", ""), "structures": len(summ),
            "atoms": int(summ["n_atoms"].sum()) if "n_atoms" in summ else 0,
            "wall s": float(wall) if wall is not None else float("nan"),
            "atom-steps/s": float(steps) / float(wall) if timed and wall > 0 else float("nan")}


def md_headlines(cost: pd.DataFrame) -> list[dict[str, str]]:
    """Card: atom-steps per second over the timed (not resumed) MD jobs of each potential."""
    cards = []
    timed = cost.dropna(subset=["atom-steps/s"])
    for (potential, device), g in timed.groupby(["potential", "device"], sort=False):
        rate = (g["atom-steps/s"] * g["wall s"]).sum() / g["wall s"].sum()  # whole-run average
        cards.append(headline(f"MD throughput, {potential}", f"{rate:,.0f} atom-steps/s",
                              f"{device}, {len(g)} system(s), {int(g['atoms'].sum()):,} atoms; "
                              "whole jobs (relaxations and retries included)"))
    return cards
