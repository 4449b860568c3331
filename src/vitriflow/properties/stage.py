"""The properties stage's jobs: what each rule computes for one system, and the comparison of
every system's properties with measured glasses.

Each job takes the system's quenched structures (failed ones pass through as failed rows) and
returns tables; the scripts only read, call and write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("vitriflow.properties")

ID_COLUMNS = ("structure_id", "system", "label", "formula", "composition_index", "replica",
              "potential")


def _ids(atoms) -> dict[str, Any]:
    return {k: atoms.info[k] for k in ID_COLUMNS if k in atoms.info}


# ----------------------------------------------------------------------------- network
def network_job(structures: Sequence, cfg: Mapping[str, Any], analysis: Mapping[str, Any],
                xray_path: str | None) -> dict[str, pd.DataFrame]:
    """Network structure (Qn, oxygen speciation, NBO/T and its charge-balance value, rings) and
    the X-ray S(Q) of every ok structure: tables ``network``, ``qn``, ``rings``, ``xray``."""
    from vitriflow.analysis.coordination import to_cutoff_map
    from vitriflow.analysis.rdf import rdf
    from vitriflow.analysis.system import AnalysisSettings
    from vitriflow.properties.network import (
        cell_oxides,
        default_cutoffs,
        nbo_per_t_charge_balance,
        network_properties,
        stack_results,
    )
    from vitriflow.properties.xray import load_cromer_mann, xray_sq

    grid = AnalysisSettings.from_config(analysis)
    table = load_cromer_mann(xray_path) if xray_path else None
    # (former, "O") keys, as default_cutoffs writes them
    fixed = {(a, b) if b == "O" else (b, a): v
             for (a, b), v in to_cutoff_map(cfg["cutoffs"]).items()}
    results, rows, xray = {}, [], []
    for a in structures:
        row = _ids(a)
        if a.info.get("status", "ok") != "ok":
            rows.append({**row, "status": "failed",
                         "reason": a.info.get("reason", "failed upstream")})
            continue
        cutoffs = {**default_cutoffs(a), **fixed}
        results[a.info["structure_id"]] = network_properties(
            a, cutoffs, rings=cfg["rings"], max_ring_size=cfg["max_ring_size"],
            max_ring_vertices=cfg["max_ring_vertices"])
        try:
            balance, note = nbo_per_t_charge_balance(cell_oxides(a.get_chemical_symbols())), ""
        except ValueError as exc:
            balance, note = np.nan, str(exc)
        rows.append({**row, "status": "ok", "reason": "", "nbo_per_t_charge_balance": balance,
                     "charge_balance_note": note})
        if table is not None:
            s, _ = xray_sq(rdf(a, grid.r_max, grid.dr), grid.q, table, grid.lorch)
            xray.append(pd.DataFrame({"structure_id": a.info["structure_id"], "Q_invA": grid.q,
                                      "S_X": s}))
    scalars, qn, _, rings = stack_results(results)
    network = pd.DataFrame(rows)
    if len(scalars):
        network = network.merge(scalars, on="structure_id", how="left")
    xray_df = (pd.concat(xray, ignore_index=True) if xray
               else pd.DataFrame(columns=["structure_id", "Q_invA", "S_X"]))
    return {"network": network, "qn": qn, "rings": rings, "xray": xray_df}


# ----------------------------------------------------------------------------- MD-based parts
def elastic_job(structures: Sequence, model, cfg: Mapping[str, Any]) -> pd.DataFrame:
    from vitriflow.properties.elastic import elastic_properties

    return pd.DataFrame(elastic_properties(structures, model, cfg))


def thermal_job(structures: Sequence, model, cfg: Mapping[str, Any], checkpoint,
                device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from vitriflow.properties.thermal import run_cooling_scan

    rows, curves = run_cooling_scan(structures, model, cfg, checkpoint, device=device)
    return pd.DataFrame(rows), curves


def transport_job(structures: Sequence, model, cfg: Mapping[str, Any], protocol, checkpoint_dir,
                  device: str, green_kubo: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Diffusion (and Green-Kubo viscosity) at each temperature of ``cfg`` (the protocol's melt
    temperature when none is listed); one checkpoint per temperature."""
    from pathlib import Path

    from vitriflow.properties.transport import melt_temperatures, run_transport

    temps = list(cfg["temperatures_K"]) or melt_temperatures(protocol)
    rows, msd = [], []
    for t in temps:
        r, m = run_transport(structures, model, cfg,
                             Path(checkpoint_dir) / f"transport_{t:.0f}K.pt",
                             t, device=device, green_kubo=green_kubo)
        rows.extend(r)
        msd.append(m)
    return pd.DataFrame(rows), pd.concat(msd, ignore_index=True)


# ----------------------------------------------------------------------------- vs experiment
#: MD column of each compared property, by the table it comes from
MD_PROPERTIES = {
    "summary": {"density": "density_g_cm3"},
    "elastic": {"bulk_modulus": "bulk_modulus_GPa", "shear_modulus": "shear_modulus_GPa",
                "elastic_modulus": "youngs_modulus_GPa", "poisson_ratio": "poisson_ratio"},
    "thermal": {"tg": "tg_K", "cte": "cte_linear_ppm_per_K"},
}


def md_long(tables: Mapping[str, pd.DataFrame], density_is_md: bool = True) -> pd.DataFrame:
    """One row per (structure, property) of the ok structures of one system: composition label,
    potential, value. ``density_is_md`` false for a protocol without an NPT stage: the cell kept
    the volume it was packed at, so its density is an input, not an MD result."""
    out = []
    for name, columns in MD_PROPERTIES.items():
        if name == "summary" and not density_is_md:
            continue
        df = tables.get(name)
        if df is None or df.empty:
            continue
        ok = df[df["status"] == "ok"] if "status" in df else df
        for prop, col in columns.items():
            if col not in ok:
                continue
            vals = ok[["structure_id", "label", "potential", col]].dropna(subset=[col])
            out.append(vals.rename(columns={col: "value", "label": "composition"})
                       .assign(property=prop))
    if not out:
        return pd.DataFrame(
            columns=["structure_id", "composition", "potential", "value", "property"])
    return pd.concat(out, ignore_index=True)


def oxide_compositions(compositions: pd.DataFrame) -> dict[str, dict[str, float]]:
    """label -> {oxide: mole fraction} of the oxide glasses of a structures compositions table."""
    cols = [c for c in compositions.columns if c.startswith("oxide_")]
    out = {}
    for _, row in compositions.iterrows():
        fr = {c.removeprefix("oxide_"): float(row[c]) for c in cols if row[c] > 0}
        if fr:
            out[str(row["label"])] = fr
    return out


def compare_with_experiment(md: pd.DataFrame, compositions: Mapping[str, Mapping[str, float]],
                            measured: pd.DataFrame, tolerance_mol: float) -> pd.DataFrame:
    """The parity table (``vitriflow.properties.experiment.parity_table``) of the MD rows
    against the measured glasses within ``tolerance_mol`` mol%."""
    from vitriflow.properties.experiment import measured_table, parity_table

    labels = {c: compositions[c] for c in md["composition"].unique() if c in compositions}
    if not labels:
        return pd.DataFrame()
    exp = measured_table(labels, measured, tol=tolerance_mol / 100.0)
    return parity_table(md[md["composition"].isin(list(labels))], exp)


def tg_ranks(parity: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of MD vs measured Tg per potential (series of >= 3 glasses)."""
    from vitriflow.properties.experiment import spearman_tg

    rows = []
    tg = (parity[(parity["property"] == "tg") & parity["exp_value"].notna()]
          if len(parity) else parity)
    for potential, g in (tg.groupby("potential") if len(tg) else []):
        g = g.sort_values("exp_n", ascending=False).drop_duplicates("composition")
        rows.append({"potential": potential, **spearman_tg(g)})
    return pd.DataFrame(rows, columns=["potential", "rho", "p_value", "n"])


def nbo_check(network: pd.DataFrame) -> pd.DataFrame:
    """NBO/T of the MD glasses (mean, spread over replicas) beside the charge-balance value of
    their composition."""
    need = {"nbo_per_t", "nbo_per_t_charge_balance", "label"}
    if network.empty or not need <= set(network.columns):
        return pd.DataFrame()
    ok = network[network["status"] == "ok"]
    g = ok.groupby(["system", "label"], sort=False)
    out = pd.DataFrame({"nbo_per_t_md": g["nbo_per_t"].mean(),
                        "nbo_per_t_spread": g["nbo_per_t"].std(ddof=1),
                        "nbo_per_t_charge_balance": g["nbo_per_t_charge_balance"].first(),
                        "replicas": g.size()}).reset_index()
    out["difference"] = out["nbo_per_t_md"] - out["nbo_per_t_charge_balance"]
    return out


def summary_table(md: pd.DataFrame) -> pd.DataFrame:
    """Mean over replicas of every MD property, one row per (composition, potential)."""
    if md.empty:
        return pd.DataFrame()
    wide = md.pivot_table(index=["composition", "potential"], columns="property", values="value",
                          aggfunc="mean")
    wide["replicas"] = md.groupby(["composition", "potential"])["structure_id"].nunique()
    return wide.reset_index().rename_axis(columns=None)
