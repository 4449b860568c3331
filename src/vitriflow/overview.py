"""Report sections of the core stages: run summary/provenance (00) and melt-quench MD (30)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from vitriflow.io import config_hash, package_versions, read_table
from vitriflow.report import esc, figure_html, headline, note_html, table_html, write_section


def summary_section(path, systems, references, compositions, summaries, config) -> None:
    """Run summary: per-system table (compositions, structures, failures, reference sources)."""
    rows, sources = [], set()
    for name, ref_p, comp_p, sum_p in zip(systems, references, compositions, summaries, strict=True):
        refs, _ = read_table(ref_p)
        comps, _ = read_table(comp_p)
        summ, prov = read_table(sum_p)
        sources |= set(refs["source"])
        rows.append({
            "system": name, "potential": summ["potential"].iloc[0] if len(summ) else "",
            "compositions": len(comps), "structures": len(summ),
            "ok": int((summ["status"] == "ok").sum()), "failed": int((summ["status"] != "ok").sum()),
            "reference source": ", ".join(sorted(set(refs["source"]))),
            "mean density g/cm3": summ.loc[summ.status == "ok", "density_g_cm3"].mean(),
            "MD device": prov.get("device", ""),
        })
    table = pd.DataFrame(rows)
    parts = [f"<p>{len(systems)} systems, {int(table['structures'].sum())} structures, "
             f"{int(table['failed'].sum())} failed. Config hash <code>{config_hash(config)}</code>, "
             f"seed {config.get('seed')}.</p>"]
    if "estimate" in sources:
        parts.append(note_html("Some reference volumes are ESTIMATES from elemental molar volumes "
                               "(no Materials Project data reached this run): densities of those "
                               "systems are rough.", "bad"))
    parts.append(table_html(table, "Systems"))
    versions = package_versions()
    parts.append("<h3>Provenance</h3><table class='kv'>" + "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in versions.items()) + "</table>")
    parts.append(f"<details><summary>Full configuration</summary><pre>{esc(json.dumps(config, indent=1, default=str))}</pre></details>")
    write_section(path, "Run summary", *parts, headlines=summary_headlines(table, sources))


def summary_headlines(table: pd.DataFrame, sources: set[str]) -> list[dict[str, str]]:
    """Cards: structures that survived MD; a warning when reference volumes are estimates."""
    n, failed = int(table["structures"].sum()), int(table["failed"].sum())
    devices = _distinct(table["MD device"])
    cards = [headline("Structures melt-quenched", f"{n - failed} of {n} ok",
                      f"{len(table)} systems ({_distinct(table['potential'])}) on {devices or '?'}; "
                      f"{failed} failed (packing, MD or relaxation; reasons in the MD section)",
                      "good" if failed == 0 else "bad")]
    if "estimate" in sources:
        cards.append(headline("Crystal references", "estimates",
                              "no Materials Project data reached this run: densities are rough", "bad"))
    return cards


def _distinct(values) -> str:
    return ", ".join(sorted({str(v) for v in values if str(v)}))


def md_section(path, systems, summaries, traces) -> None:
    """Melt-quench traces (Aykol et al. Fig. 2 style) and the failure table."""
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
                                      f"protocol ({prov.get('potential', '')}, {prov.get('device', '')})"))
    fail = pd.concat(failures, ignore_index=True) if failures else pd.DataFrame()
    if len(fail):
        parts.insert(0, table_html(fail, f"{len(fail)} structures failed; the reason says where (packing, "
                                         "the MD stability guard, which retries once with dt/2, or a "
                                         "relaxation)"))
    else:
        parts.insert(0, "<p>No structure failed in packing, MD or relaxation.</p>")
    cost_table = pd.DataFrame(cost)
    parts.insert(1, table_html(
        cost_table,
        "Cost of the MD jobs: wall time of each system's job (pre-relaxation, the protocol, retries "
        "and the final relaxation) and atom-steps per second over the protocol's steps; a resumed "
        "job's time covers only what was left, so its rate is not given.", float_format="{:.3g}"))
    write_section(path, "Melt-quench MD", *parts, headlines=md_headlines(cost_table))


def _cost_row(name: str, summ: pd.DataFrame, prov: dict) -> dict:
    wall, steps = prov.get("wall_s"), prov.get("atom_steps")
    timed = wall is not None and steps is not None and not prov.get("resumed", False)
    return {"system": name, "potential": prov.get("potential", ""), "device": prov.get("device", ""),
            "structures": len(summ), "atoms": int(summ["n_atoms"].sum()) if "n_atoms" in summ else 0,
            "wall s": float(wall) if wall is not None else float("nan"),
            "atom-steps/s": float(steps) / float(wall) if timed and wall > 0 else float("nan")}


def md_headlines(cost: pd.DataFrame) -> list[dict[str, str]]:
    """Card: atom-steps per second over the timed (not resumed) MD jobs of each potential."""
    cards = []
    timed = cost.dropna(subset=["atom-steps/s"])
    for (potential, device), g in timed.groupby(["potential", "device"], sort=False):
        rate = (g["atom-steps/s"] * g["wall s"]).sum() / g["wall s"].sum()  # whole-run average
        cards.append(headline(f"MD throughput, {potential}", f"{rate:,.0f} atom-steps/s",
                              f"{device}, {len(g)} system(s), {int(g['atoms'].sum()):,} atoms; whole jobs "
                              "(relaxations and retries included)"))
    return cards
