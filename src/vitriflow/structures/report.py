"""Report section 00: the run summary (systems, structures, reference sources, provenance)."""

from __future__ import annotations

import json

import pandas as pd

from vitriflow.io import config_hash, package_versions, read_table
from vitriflow.report import esc, headline, note_html, table_html, write_section


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
             f"seed {config['seed']}.</p>"]
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
