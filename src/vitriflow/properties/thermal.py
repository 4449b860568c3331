"""Stepwise NPT cooling scan: V(T) and H(T), the glass transition and the glass's expansion.

The scan is an MD protocol of constant-temperature NPT stages (torch-sim's stochastic cell
rescaling, as the MD stage's npt stages), from ``T_start_K`` down to ``T_end_K`` in steps of
``step_K``, each ``equil_steps`` + ``sample_steps`` long (the first also ``melt_steps`` longer).
It runs through ``vitriflow.md.engine.run_melt_quench`` on all structures of a system as one
batch, so it has the engine's stability guard and resumes exactly from its checkpoint.

Per temperature, the volume, potential and kinetic energy recorded every ``sample_every`` steps
over the last ``sample_steps`` of the stage are averaged: the density and the enthalpy per atom
H = (U + K + P V) / N at the stage's external pressure P. The glass transition Tg is the break
of a continuous two-line fit to V(T) (and separately H(T)) whose break point is scanned over
the temperature range; the glass's volumetric expansion coefficient is the slope of the low-T
line over its volume at the lowest scanned temperature, the linear one a third of it. The
cooling rate (K/ps) is written next to Tg: 10^12-10^14 K/s, many orders of magnitude faster
than a laboratory's ~10 K/min, so an MD Tg lies well above the measured one; compare it across
a composition series (rank correlation), not one to one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger("vitriflow.properties")

AMU_PER_A3_TO_G_CM3 = 1.66053906660
#: long-table property name (as in ``vitriflow.properties.experiment``) -> (column, unit)
_ID_KEYS = ("structure_id", "system", "label", "formula", "composition_index", "replica",
            "potential")


# ----------------------------------------------------------------------------- the schedule
def scan_temperatures(cfg: Mapping[str, Any]) -> list[float]:
    """T_start_K, T_start_K - step_K, ... down to T_end_K (included: the last step may be
    shorter)."""
    t0, t1, dt = float(cfg["T_start_K"]), float(cfg["T_end_K"]), float(cfg["step_K"])
    if not (t0 > t1 > 0 and dt > 0):
        raise ValueError(f"properties.thermal: T_start_K={t0}, T_end_K={t1}, step_K={dt}; "
                         "expected T_start_K > T_end_K > 0 and step_K > 0")
    temps = list(np.arange(t0, t1, -dt))
    if not np.isclose(temps[-1], t1):
        temps.append(t1)
    return [float(t) for t in temps]


def scan_protocol_config(cfg: Mapping[str, Any]) -> dict:
    """The MD protocol section of the scan (``config#protocol`` form, to be defaulted)."""
    for key in ("equil_steps", "sample_steps", "sample_every"):
        if cfg[key] < 1:
            raise ValueError(f"properties.thermal.{key}: {cfg[key]}; expected at least 1")
    if cfg["sample_steps"] % cfg["sample_every"]:
        raise ValueError(f"properties.thermal.sample_every: {cfg['sample_every']} does not divide "
                         f"sample_steps ({cfg['sample_steps']}); expected a divisor")
    stages = []
    for i, t in enumerate(scan_temperatures(cfg)):
        steps = cfg["equil_steps"] + cfg["sample_steps"] + (cfg["melt_steps"] if i == 0 else 0)
        stages.append({"name": f"T{t:.0f}K", "ensemble": "npt", "steps": int(steps),
                       "temperature_K": t, "pressure_GPa": float(cfg["pressure_GPa"])})
    return {"timestep_fs": cfg["timestep_fs"], "thermostat_tau_fs": cfg["thermostat_tau_fs"],
            "barostat_tau_fs": cfg["barostat_tau_fs"], "stages": stages, "prerelax_steps": 0,
            "relax": {"enabled": False}, "checkpoint_every": cfg["checkpoint_every"],
            "log_every": cfg["sample_every"]}


def scan_protocol(cfg: Mapping[str, Any]):
    """The scan as a validated ``vitriflow.md.Protocol`` (protocol defaults from the schema)."""
    from vitriflow.config import with_defaults
    from vitriflow.md.protocol import Protocol

    return Protocol.from_config(with_defaults("config#protocol", scan_protocol_config(cfg)),
                                where="properties.thermal")


def cooling_rate_K_per_ps(cfg: Mapping[str, Any]) -> float:
    """Mean cooling rate of the stepwise scan: one step_K per (equil + sample) steps."""
    return cfg["step_K"] / ((cfg["equil_steps"] + cfg["sample_steps"]) * cfg["timestep_fs"] * 1e-3)


# ----------------------------------------------------------------------------- the run
def run_cooling_scan(structures: Sequence[Atoms], model, cfg: Mapping[str, Any], checkpoint,
                     device="cpu", progress: bool = False,
                     stop_after_segments: int | None = None) -> tuple[list[dict], pd.DataFrame]:
    """Scan every structure (one batch); returns (one flat row per structure, the long V(T),
    H(T) table). Resumes from ``checkpoint``; ``stop_after_segments`` as in the engine."""
    from vitriflow.md.engine import run_melt_quench

    protocol = scan_protocol(cfg)
    obs: list[dict] = []
    finals, _ = run_melt_quench(structures, model, protocol, checkpoint, device=device,
                                progress=progress, stop_after_segments=stop_after_segments,
                                observables=obs)
    masses = {a.info["structure_id"]: float(a.get_masses().sum()) for a in structures}
    table = temperature_table(pd.DataFrame(obs), protocol, cfg["sample_steps"], masses)
    rows = []
    for a in finals:
        sid = a.info["structure_id"]
        row = {k: a.info[k] for k in _ID_KEYS if k in a.info}
        row["cooling_rate_K_per_ps"] = cooling_rate_K_per_ps(cfg)
        if a.info["status"] != "ok":
            row.update(status="failed", reason=f"cooling scan: {a.info['reason']}")
        else:
            row.update(analyse_scan(table[table["structure_id"] == sid], cfg))
        rows.append(row)
    return rows, table


def temperature_table(obs: pd.DataFrame, protocol, sample_steps: int,
                      masses: Mapping[str, float]) -> pd.DataFrame:
    """Per structure and stage: means over the stage's last ``sample_steps`` steps."""
    cols = ["structure_id", "stage", "T_target_K", "T_mean_K", "volume_per_atom_A3",
            "volume_per_atom_std_A3", "density_g_cm3", "enthalpy_per_atom_eV",
            "pressure_mean_GPa", "n_samples"]
    if obs.empty:
        return pd.DataFrame(columns=cols)
    ends = {}
    edge = 0
    for st in protocol.stages:
        edge += st.steps
        ends[st.name] = edge
    obs = obs[obs["step"] > obs["stage"].map(ends) - sample_steps]
    kb = 8.617333262e-5
    out = []
    for (sid, stage), g in obs.groupby(["structure_id", "stage"], sort=False):
        n = g["n_atoms"].iloc[0]
        v = g["volume_A3"].to_numpy()
        p_ext = g["pressure_target_GPa"].to_numpy() / 160.21766208  # eV/Å^3
        h = (g["potential_energy_eV"] + g["kinetic_energy_eV"]).to_numpy() + p_ext * v
        # kinetic temperature with the engine's 3N - 3 degrees of freedom
        t_kin = 2 * g["kinetic_energy_eV"].to_numpy() / ((3 * n - 3) * kb)
        pressure = g[["p_xx_GPa", "p_yy_GPa", "p_zz_GPa"]].to_numpy().mean(axis=1)
        out.append({"structure_id": sid, "stage": stage, "T_target_K": g["target_K"].iloc[0],
                    "T_mean_K": float(t_kin.mean()), "volume_per_atom_A3": float(v.mean() / n),
                    "volume_per_atom_std_A3": float(v.std(ddof=1) / n) if len(v) > 1 else np.nan,
                    "density_g_cm3": masses[sid] / float(v.mean()) * AMU_PER_A3_TO_G_CM3,
                    "enthalpy_per_atom_eV": float(h.mean() / n),
                    "pressure_mean_GPa": float(pressure.mean()), "n_samples": len(g)})
    return pd.DataFrame(out, columns=cols)


def analyse_scan(table: pd.DataFrame, cfg: Mapping[str, Any]) -> dict:
    """Tg (from V and from H), the glass's CTE and the liquid's, from one structure's table."""
    t = table["T_target_K"].to_numpy(dtype=float)
    v = table["volume_per_atom_A3"].to_numpy(dtype=float)
    h = table["enthalpy_per_atom_eV"].to_numpy(dtype=float)
    row: dict[str, Any] = {"n_temperatures": len(t)}
    try:
        fv = fit_two_lines(t, v, cfg["min_points_per_line"])
        fh = fit_two_lines(t, h, cfg["min_points_per_line"])
    except ValueError as exc:
        return {**row, "status": "failed", "reason": str(exc)}
    t_low = float(t.min())
    v_low = fv["intercept"] + fv["slope_low"] * (t_low - fv["break"])
    alpha_v = fv["slope_low"] / v_low
    alpha_liquid = fv["slope_high"] / fv["intercept"]  # at Tg: the intercept is V(Tg)
    row.update({
        "tg_K": fv["break"], "tg_low_K": fv["break_low"], "tg_high_K": fv["break_high"],
        "tg_fit_r2": fv["r2"], "tg_enthalpy_K": fh["break"],
        "tg_enthalpy_low_K": fh["break_low"], "tg_enthalpy_high_K": fh["break_high"],
        "tg_enthalpy_fit_r2": fh["r2"],
        "cte_volumetric_per_K": alpha_v, "cte_linear_per_K": alpha_v / 3,
        "cte_linear_ppm_per_K": alpha_v / 3 * 1e6,
        "cte_liquid_volumetric_per_K": alpha_liquid,
        "cp_glass_eV_per_atom_K": fh["slope_low"], "cp_liquid_eV_per_atom_K": fh["slope_high"],
        "volume_per_atom_low_T_A3": v_low, "T_low_K": t_low,
        "density_low_T_g_cm3": float(table.loc[table["T_target_K"].idxmin(), "density_g_cm3"]),
    })
    row["tg_break_pvalue"] = fv["pvalue"]
    ok = fv["slope_high"] > fv["slope_low"] and fv["pvalue"] < 0.05
    row.update(status="ok" if ok else "failed",
               reason="" if ok else (
                   f"no break in V(T): the two-line fit is no better than one line (F-test p = "
                   f"{fv['pvalue']:.2g}) or its high-T line is not the steeper; scan to a higher "
                   "T_start_K or with more temperatures"))
    return row


# ----------------------------------------------------------------------------- the fit
def fit_two_lines(x, y, min_points: int = 3, n_grid: int = 400) -> dict[str, float]:
    """Continuous two-line (hinge) least-squares fit y = a + b (x - x_b) + c max(x - x_b, 0),
    the break x_b scanned over a fine grid between the ``min_points``-th smallest and largest x.

    Returns ``break``, ``slope_low`` (b), ``slope_high`` (b + c), ``intercept`` (a: y at the
    break), ``sse``, ``r2``, ``break_low``/``break_high`` (the breaks whose SSE stays within
    exp(1/n) of the best: a ~68 % profile-likelihood interval for Gaussian noise) and ``pvalue``
    (F-test of the two lines against one; 1 for data on one straight line).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 2 * min_points or len(np.unique(x)) < 2 * min_points:
        raise ValueError(f"two-line fit: {n} finite points; expected at least "
                         f"{2 * min_points} (min_points_per_line = {min_points} per line)")
    xs = np.sort(np.unique(x))
    grid = np.linspace(xs[min_points - 1], xs[-min_points], n_grid)

    def solve(xb):
        a = np.column_stack([np.ones(n), x - xb, np.maximum(x - xb, 0.0)])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return coef, float(((a @ coef - y) ** 2).sum())

    sse = np.array([solve(xb)[1] for xb in grid])
    k = int(np.argmin(sse))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]
    for _ in range(40):  # golden-section refinement inside the best grid cell
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        if solve(m1)[1] <= solve(m2)[1]:
            hi = m2
        else:
            lo = m1
    xb = 0.5 * (lo + hi)
    coef, best = solve(xb)
    if sse[k] < best:
        xb, (coef, best) = grid[k], solve(grid[k])
    within = np.append(grid[sse <= best * np.exp(1.0 / n)], xb)
    total = float(((y - y.mean()) ** 2).sum())
    one = float(((np.polyval(np.polyfit(x, y, 1), x) - y) ** 2).sum())
    if one <= 1e-12 * total:  # a straight line: no break to find
        pvalue = 1.0
    else:
        from scipy.stats import f as f_dist

        stat = (one - best) / 2 / (best / (n - 4)) if best > 0 and n > 4 else np.inf
        pvalue = float(f_dist.sf(stat, 2, n - 4)) if n > 4 else float("nan")
    return {"pvalue": pvalue, "break": float(xb), "slope_low": float(coef[1]),
            "slope_high": float(coef[1] + coef[2]),
            "intercept": float(coef[0]), "sse": best,
            "r2": 1 - best / total if total > 0 else float("nan"),
            "break_low": float(within.min()), "break_high": float(within.max())}
