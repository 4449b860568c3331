"""Transport in the melt: mean-square displacement and self-diffusion per element, and (classical
potentials, optional) Green-Kubo shear viscosity.

The trajectory is a short dedicated NVT run of the system's glasses at the melt temperature of
their MD protocol (or at ``temperatures_K``), rather than frames of the melt-quench itself: the
MD keeps frames only along its last stage (the 300 K anneal), its melt stage starts from a
packed cell that is not yet a liquid, and its stages may be NPT, whose barostat rescales
positions every step. Here the cell is fixed (NVT, Nose-Hoover chain): an equilibration stage,
then a production stage whose frames (every ``sample_every`` steps) and, for Green-Kubo, the
pressure tensor (every ``green_kubo.stress_every`` steps) are kept. It runs through
``vitriflow.md.engine.run_melt_quench``, so it is batched, guarded and resumable like the MD.

The engine's frames are wrapped into the cell; ``unwrap`` rebuilds continuous paths from the
minimum-image displacement between consecutive frames (exact while no atom moves more than
half a cell between frames; ``unwrap_max_jump`` reports the largest frame-to-frame move as a
fraction of the cell). MSD(t) per element is averaged over atoms and time origins
(``tidynamics.msd``, FFT) after removing the centre-of-mass drift; D = slope / 6 of a linear fit
of MSD(t) over [``fit_start_ps``, ``fit_end_fraction`` x run length]: the start skips the
ballistic regime, the end the poorly averaged long lags. The window, the fit's R^2 and the
log-log slope alpha of MSD(t) in the window (1 when diffusive) are reported with D.

Green-Kubo: eta = V / (k_B T) int_0^inf <P_ab(0) P_ab(t)> dt, with the autocorrelation averaged
over the five independent components of the symmetric traceless pressure tensor
(sum over all nine / 10). The running integral is reported only when it has plateaued (varies by
less than ``plateau_tolerance`` over the second half of the integration range); otherwise the
output says so, with the value at the end of the range as an unconverged estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

log = logging.getLogger("vitriflow.properties")

KB_J_K = 1.380649e-23
KB_EV_K = 8.617333262e-5
A2_PS_TO_M2_S = 1e-8
_ID_KEYS = ("structure_id", "system", "label", "formula", "composition_index", "replica",
            "potential")


# ----------------------------------------------------------------------------- the run
def melt_temperatures(protocol) -> list[float]:
    """The melt temperature of an MD protocol: its hottest stage's highest target."""
    return [max(max(s.t_start, s.t_end) for s in protocol.stages if s.steps > 0)]


def transport_protocol_config(cfg: Mapping[str, Any], temperature_K: float,
                              green_kubo: bool) -> dict:
    """The NVT run at ``temperature_K`` as a ``config#protocol`` section (to be defaulted)."""
    if cfg["production_steps"] % cfg["sample_every"]:
        raise ValueError(f"properties.transport.sample_every: {cfg['sample_every']} does not "
                         f"divide production_steps ({cfg['production_steps']})")
    every = cfg["green_kubo"]["stress_every"] if green_kubo else cfg["production_steps"]
    stages = [{"name": "equilibrate", "steps": int(cfg["equil_steps"]),
               "temperature_K": float(temperature_K)},
              {"name": "production", "steps": int(cfg["production_steps"]),
               "temperature_K": float(temperature_K)}]
    return {"timestep_fs": cfg["timestep_fs"], "thermostat_tau_fs": cfg["thermostat_tau_fs"],
            "stages": stages, "prerelax_steps": 0, "relax": {"enabled": False},
            "checkpoint_every": cfg["checkpoint_every"], "log_every": int(every),
            "sample_every": int(cfg["sample_every"])}


def transport_protocol(cfg: Mapping[str, Any], temperature_K: float, green_kubo: bool):
    from vitriflow.config import with_defaults
    from vitriflow.md.protocol import Protocol

    section = transport_protocol_config(cfg, temperature_K, green_kubo)
    return Protocol.from_config(with_defaults("config#protocol", section),
                                where="properties.transport")


def run_transport(structures: Sequence[Atoms], model, cfg: Mapping[str, Any], checkpoint,
                  temperature_K: float, device="cpu", green_kubo: bool = False,
                  progress: bool = False, stop_after_segments: int | None = None
                  ) -> tuple[list[dict], pd.DataFrame]:
    """NVT run of every structure at ``temperature_K`` (one batch, resumable from
    ``checkpoint``); returns (one flat row per structure, the long MSD table).

    ``green_kubo``: also keep the pressure tensor for the Green-Kubo viscosity (one extra model
    call per ``stress_every`` steps; meant for classical potentials).
    """
    from vitriflow.md.engine import run_melt_quench

    protocol = transport_protocol(cfg, temperature_K, green_kubo)
    frames: list[Atoms] = []
    obs: list[dict] | None = [] if green_kubo else None
    finals, _ = run_melt_quench(structures, model, protocol, checkpoint, device=device,
                                progress=progress, stop_after_segments=stop_after_segments,
                                samples=frames, observables=obs)
    dt_ps = cfg["sample_every"] * cfg["timestep_fs"] * 1e-3
    obs_df = pd.DataFrame(obs or [])
    rows, tables = [], []
    for a in finals:
        sid = a.info["structure_id"]
        row = {k: a.info[k] for k in _ID_KEYS if k in a.info}
        row["transport_T_K"] = float(temperature_K)
        if a.info["status"] != "ok":
            row.update(status="failed", reason=f"transport run: {a.info['reason']}")
            rows.append(row)
            continue
        mine = [f for f in frames if f.info["structure_id"] == sid]
        if len(mine) < 2:
            row.update(status="failed", reason=f"transport run: {len(mine)} frame(s) kept")
            rows.append(row)
            continue
        positions = np.stack([f.positions for f in mine])
        cells = np.stack([f.cell.array for f in mine])
        unwrapped, jump = unwrap(positions, cells)
        msd = msd_per_element(unwrapped, a.numbers, a.get_masses())
        lags = np.arange(len(mine)) * dt_ps
        row.update(diffusion_columns(lags, msd, cfg["fit_start_ps"], cfg["fit_end_fraction"]))
        row["unwrap_max_jump"] = jump
        row["production_ps"] = cfg["production_steps"] * cfg["timestep_fs"] * 1e-3
        if green_kubo:
            g = obs_df[(obs_df["structure_id"] == sid) & (obs_df["stage"] == "production")]
            ptensor = g[["p_xx_GPa", "p_yy_GPa", "p_zz_GPa", "p_yz_GPa", "p_xz_GPa",
                         "p_xy_GPa"]].to_numpy()
            row.update(green_kubo_viscosity(
                ptensor, float(g["volume_A3"].mean()), float(temperature_K),
                cfg["green_kubo"]["stress_every"] * cfg["timestep_fs"] * 1e-3,
                cfg["green_kubo"]["max_lag_fraction"], cfg["green_kubo"]["plateau_tolerance"]))
        else:
            row.update(eta_Pa_s=np.nan, eta_estimate_Pa_s=np.nan, eta_plateau=False,
                       eta_note="Green-Kubo viscosity not computed (off, or not a classical "
                                "potential)")
        row.update(status="ok", reason="")
        rows.append(row)
        keep = lags <= cfg["fit_end_fraction"] * lags[-1]
        for el, m in msd.items():
            tables.append(pd.DataFrame({"structure_id": sid, "T_K": float(temperature_K),
                                        "element": el, "lag_ps": lags[keep],
                                        "msd_A2": m[keep]}))
    table = (pd.concat(tables, ignore_index=True) if tables else
             pd.DataFrame(columns=["structure_id", "T_K", "element", "lag_ps", "msd_A2"]))
    return rows, table


# ----------------------------------------------------------------------------- MSD and D
def unwrap(positions: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, float]:
    """Continuous paths from wrapped frames (n_frames, n_atoms, 3) with cells (n_frames, 3, 3)
    (row vectors): each frame-to-frame move is taken as its minimum image. Returns the paths and
    the largest move as a fraction of a cell vector (> 0.5 cannot be told apart from a jump)."""
    positions, cells = np.asarray(positions, dtype=float), np.asarray(cells, dtype=float)
    frac = np.einsum("fai,fij->faj", positions, np.linalg.inv(cells))
    step = np.diff(frac, axis=0)
    step -= np.round(step)
    jump = float(np.abs(step).max()) if step.size else 0.0
    moves = np.einsum("fai,fij->faj", step, cells[1:])
    out = np.concatenate([positions[:1], positions[:1] + np.cumsum(moves, axis=0)], axis=0)
    return out, jump


def msd_per_element(paths: np.ndarray, numbers: Sequence[int], masses: Sequence[float]
                    ) -> dict[str, np.ndarray]:
    """MSD(lag) (Å^2) per element, averaged over its atoms and all time origins, after removing
    the centre-of-mass drift of the whole cell."""
    import tidynamics
    from ase.data import chemical_symbols

    paths = np.asarray(paths, dtype=float)
    m = np.asarray(masses, dtype=float)
    com = (paths * m[None, :, None]).sum(axis=1) / m.sum()
    rel = paths - com[:, None, :]
    numbers = np.asarray(numbers)
    out = {}
    for z in sorted(set(numbers.tolist())):
        idx = np.flatnonzero(numbers == z)
        msd = np.mean([tidynamics.msd(rel[:, i, :]) for i in idx], axis=0)
        msd[0] = 0.0  # the FFT leaves rounding noise (~1e-15) at lag 0
        out[chemical_symbols[z]] = msd
    return out


def fit_diffusion(lags_ps: np.ndarray, msd: np.ndarray, fit_start_ps: float,
                  fit_end_fraction: float) -> dict[str, float]:
    """D from MSD = 6 D t + b over [fit_start_ps, fit_end_fraction x last lag]."""
    lags_ps, msd = np.asarray(lags_ps, dtype=float), np.asarray(msd, dtype=float)
    end = fit_end_fraction * lags_ps[-1] if len(lags_ps) else 0.0
    sel = (lags_ps >= fit_start_ps) & (lags_ps <= end) & (lags_ps > 0)
    res = {"D_A2_ps": np.nan, "D_m2_s": np.nan, "fit_r2": np.nan, "alpha": np.nan,
           "fit_start_ps": float(fit_start_ps), "fit_end_ps": float(end),
           "msd_end_A2": float(msd[sel][-1]) if sel.any() else np.nan, "note": ""}
    if sel.sum() < 3:
        res["note"] = (f"run too short: {int(sel.sum())} lags in the fit window "
                       f"[{fit_start_ps:g}, {end:g}] ps; expected at least 3")
        return res
    t, y = lags_ps[sel], msd[sel]
    slope, icpt = np.polyfit(t, y, 1)
    resid = y - (slope * t + icpt)
    tot = ((y - y.mean()) ** 2).sum()
    res.update(D_A2_ps=float(slope / 6), D_m2_s=float(slope / 6 * A2_PS_TO_M2_S),
               fit_r2=float(1 - (resid ** 2).sum() / tot) if tot > 0 else np.nan)
    if np.all(y > 0):
        res["alpha"] = float(np.polyfit(np.log(t), np.log(y), 1)[0])
    if not (0.8 <= res["alpha"] <= 1.2):
        res["note"] = (f"MSD not yet diffusive in the window (log-log slope {res['alpha']:.2f}, "
                       "expected ~1): D is not converged")
    return res


def diffusion_columns(lags_ps, msd: Mapping[str, np.ndarray], fit_start_ps: float,
                      fit_end_fraction: float) -> dict[str, Any]:
    """Flat columns D_<el>_m2_s, D_<el>_A2_ps, D_<el>_fit_r2, D_<el>_alpha, msd_<el>_end_A2, the
    window, and one note naming the elements whose MSD was not diffusive."""
    row: dict[str, Any] = {}
    notes = []
    for el, m in msd.items():
        f = fit_diffusion(lags_ps, m, fit_start_ps, fit_end_fraction)
        row.update({f"D_{el}_m2_s": f["D_m2_s"], f"D_{el}_A2_ps": f["D_A2_ps"],
                    f"D_{el}_fit_r2": f["fit_r2"], f"D_{el}_alpha": f["alpha"],
                    f"msd_{el}_end_A2": f["msd_end_A2"]})
        row["fit_start_ps"], row["fit_end_ps"] = f["fit_start_ps"], f["fit_end_ps"]
        if f["note"]:
            notes.append(f"{el}: {f['note']}")
    row["transport_note"] = "; ".join(notes)
    return row


# ----------------------------------------------------------------------------- Green-Kubo
def green_kubo_viscosity(ptensor_gpa: np.ndarray, volume_A3: float, temperature_K: float,
                         dt_ps: float, max_lag_fraction: float, plateau_tolerance: float
                         ) -> dict[str, Any]:
    """Shear viscosity (Pa s) from the pressure tensor (n, 6: xx yy zz yz xz xy, GPa) sampled
    every ``dt_ps``; ``eta_Pa_s`` is NaN unless the running integral has plateaued."""
    import tidynamics

    p = np.asarray(ptensor_gpa, dtype=float) * 1e9
    n_lag = int(max_lag_fraction * len(p))
    out: dict[str, Any] = {"eta_Pa_s": np.nan, "eta_estimate_Pa_s": np.nan,
                           "eta_plateau": False, "eta_max_lag_ps": n_lag * dt_ps}
    if len(p) < 20 or n_lag < 10 or not np.all(np.isfinite(p)):
        why = ("no finite stress (the model gives none)" if len(p) and not np.all(np.isfinite(p))
               else f"{len(p)} stress samples; too few for an autocorrelation")
        return {**out, "eta_note": f"Green-Kubo not computed: {why}"}
    iso = p[:, :3].mean(axis=1, keepdims=True)
    normal = p[:, :3] - iso
    acf = (sum(tidynamics.acf(normal[:, i]) for i in range(3))
           + 2 * sum(tidynamics.acf(p[:, i]) for i in range(3, 6))) / 10
    acf = acf[: n_lag + 1]
    pref = volume_A3 * 1e-30 / (KB_J_K * temperature_K)
    running = pref * np.concatenate([[0.0], np.cumsum(0.5 * (acf[1:] + acf[:-1]) * dt_ps * 1e-12)])
    tail = running[len(running) // 2:]
    mean = float(tail.mean())
    spread = float((tail.max() - tail.min()) / abs(mean)) if mean != 0 else np.inf
    out.update(eta_estimate_Pa_s=float(running[-1]), eta_plateau_spread=spread)
    if mean > 0 and spread <= plateau_tolerance:
        return {**out, "eta_Pa_s": mean, "eta_plateau": True, "eta_note": ""}
    start = (len(running) - tail.size) * dt_ps
    return {**out, "eta_note": (
        f"Green-Kubo integral has not plateaued: it varies by {spread:.0%} over "
        f"[{start:.2f}, {n_lag * dt_ps:.2f}] ps (tolerance {plateau_tolerance:.0%}); "
        "run longer (production_steps)")}


def replica_summary(rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
                    by: Sequence[str] = ("system", "composition_index", "label", "transport_T_K")
                    ) -> pd.DataFrame:
    """Mean, std (ddof=1) and count over the replicas of every D_<el>_m2_s and eta_Pa_s."""
    from vitriflow.properties.elastic import replica_summary as _summary

    df = pd.DataFrame(rows)
    cols = [c for c in df.columns if (c.startswith("D_") and c.endswith("_m2_s"))
            or c == "eta_Pa_s"]
    return _summary(df, cols, by)
