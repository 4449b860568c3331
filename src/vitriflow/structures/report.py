"""Report section 00: the run summary (systems, structures, reference sources, provenance)."""

from __future__ import annotations

import json

import pandas as pd

from vitriflow.io import config_hash, package_versions, read_table
from vitriflow.report import esc, headline, note_html, table_html, write_section

DENSITY_TOLERANCE = 0.05  # MD glass density within 5 % of the reference glass density


def density_check(name: str, comps: pd.DataFrame, summ: pd.DataFrame) -> pd.DataFrame:
    """Per composition packed at a reference glass density (the glass-density model): that
    density, the mean and spread of the MD glasses (ok structures) and the deviation."""
    ref = comps[comps["volume_source"].astype(str).str.startswith("glass_density_model")]
    ok = summ[summ["status"] == "ok"]
    rows = []
    for r in ref.itertuples():
        d = ok.loc[ok["composition_index"] == r.composition_index, "density_g_cm3"]
        rows.append({"system": name, "glass": r.label, "reference g/cm3": r.target_density_g_cm3,
                     "MD g/cm3": d.mean() if len(d) else float("nan"),
                     "MD spread": d.std(ddof=1) if len(d) > 1 else float("nan"),
                     "deviation %": (100 * (d.mean() / r.target_density_g_cm3 - 1)
                                     if len(d) else float("nan"))})
    return pd.DataFrame(rows)


def summary_section(path, systems, references, compositions, summaries, config) -> None:
    """Run summary: per-system table (compositions, structures, failures, reference sources),
    MD densities against the reference glass densities, provenance."""
    rows, sources, densities = [], set(), []
    for name, ref_p, comp_p, sum_p in zip(systems, references, compositions, summaries,
                                          strict=True):
        refs, _ = read_table(ref_p)
        comps, _ = read_table(comp_p)
        summ, prov = read_table(sum_p)
        sources |= set(refs["source"])
        densities.append(density_check(name, comps, summ))
        rows.append({
            "system": name, "potential": summ["potential"].iloc[0] if len(summ) else "",
            "compositions": len(comps), "structures": len(summ),
            "ok": int((summ["status"] == "ok").sum()),
            "failed": int((summ["status"] != "ok").sum()),
            "reference source": ", ".join(sorted(set(refs["source"]))),
            "mean density g/cm3": summ.loc[summ.status == "ok", "density_g_cm3"].mean(),
            "MD device": prov.get("device", ""),
        })
    table = pd.DataFrame(rows)
    parts = [f"<p>{len(systems)} systems, {int(table['structures'].sum())} structures, "
             f"{int(table['failed'].sum())} failed. Config hash "
             f"<code>{config_hash(config)}</code>, seed {config['seed']}.</p>"]
    if "estimate" in sources:
        parts.append(note_html("Some reference volumes are ESTIMATES from elemental molar volumes "
                               "(no Materials Project data reached this run): densities of those "
                               "systems are rough.", "bad"))
    for row in table[(table["structures"] > 0) & (table["ok"] == 0)].itertuples():
        parts.append(note_html(f"System {row.system}: every one of its {row.structures} structures "
                               "failed; the reasons are in the MD section.", "bad"))
    parts.append(table_html(table, "Systems"))
    dens = (pd.concat([d for d in densities if len(d)], ignore_index=True)
            if any(len(d) for d in densities) else None)
    if dens is not None:
        parts.append(table_html(dens, "Glass densities after MD against the reference density "
                                      "the cells were packed at (vitriflow.glass_density: partial "
                                      "molar volumes fitted on i-Melt's measured densities); "
                                      "spread over replicas.", float_format="{:.3g}"))
    versions = package_versions()
    parts.append("<h3>Provenance</h3><table class='kv'>" + "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in versions.items()) + "</table>")
    parts.append("<details><summary>Full configuration</summary>"
                 f"<pre>{esc(json.dumps(config, indent=1, default=str))}</pre></details>")
    write_section(path, "Run summary", *parts, headlines=summary_headlines(table, sources, dens))


def summary_headlines(table: pd.DataFrame, sources: set[str],
                      densities: pd.DataFrame | None = None) -> list[dict[str, str]]:
    """Cards: structures that survived MD; MD glass densities against their reference; a
    warning when reference volumes are estimates."""
    n, failed = int(table["structures"].sum()), int(table["failed"].sum())
    devices = _distinct(table["MD device"])
    cards = [headline("Structures melt-quenched", f"{n - failed} of {n} ok",
                      f"{len(table)} systems ({_distinct(table['potential'])}) on "
                      f"{devices or '?'}; {failed} failed (packing, MD or relaxation; reasons in "
                      "the MD section)",
                      "good" if failed == 0 else "bad")]
    if densities is not None and densities["deviation %"].notna().any():
        worst = float(densities["deviation %"].abs().max())
        cards.append(headline("Glass densities vs reference", f"within {worst:.1f} %",
                              f"{len(densities)} glasses: MD density after the protocol against "
                              "the glass-density model (fitted on i-Melt's measured densities); "
                              "target 5 %",
                              "good" if worst <= 100 * DENSITY_TOLERANCE else "bad"))
    if "estimate" in sources:
        cards.append(headline("Crystal references", "estimates",
                              "no Materials Project data reached this run: densities are rough",
                              "bad"))
    return cards


def _distinct(values) -> str:
    return ", ".join(sorted({str(v) for v in values if str(v)}))
