"""The dissolution report section: notes, tables and figures drawn from the evaluation job's
tables (``evaluate.TABLES``) and model predictions; nothing is fitted here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.report import figure_html, headline, note_html, panel_grid, pyplot, table_html
from vitriflow.surrogates.dissolution.data import RATE_UNIT, frames_by_ph_measure
from vitriflow.surrogates.dissolution.evaluate import NC_TREND_PH, degree_code, glass_order
from vitriflow.surrogates.dissolution.models import rrmse
from vitriflow.surrogates.dissolution.specs import resolve_models

TITLE = "Dissolution kinetics (topology-informed models)"


def headline_card(summary: pd.DataFrame, target_rrmse_pct: float) -> dict[str, str]:
    """Report card: the best grouped-random model against the thesis' RRMSE."""
    best = summary.loc[summary["grouped_rrmse_pct"].idxmin()]
    return headline("Dissolution rate, held-out glass groups",
                    f"RRMSE {best['grouped_rrmse_pct']:.2f} ± {best['grouped_rrmse_sd_pct']:.2f} %",
                    f"best model {best['model']} ({best['ph_measure']} pH) over "
                    f"{int(best['grouped_splits'])} grouped splits; thesis {target_rrmse_pct} %",
                    "good" if best["grouped_rrmse_pct"] <= target_rrmse_pct else "bad")


def _panel_grid(n: int):  # square panels, six to a row
    return panel_grid(n, ncols=6, size=(2.6, 2.6), layout="constrained")


def _notes(summary: pd.DataFrame, frame: pd.DataFrame, cfg: Mapping[str, Any],
           table_path: str) -> list[str]:
    target = float(cfg["target_rrmse_pct"])
    ext = cfg["extrapolation"]
    parts = [note_html(
        f"Data: {table_path} ({len(frame)} measurements, {frame['glass'].nunique()} glasses, "
        f"{frame['group'].nunique()} (glass, initial pH) groups). Target: log10 forward rate in "
        f"{RATE_UNIT}. RRMSE = RMSE / |mean measured log10 rate| (thesis Eq. 5-1); 1 % is about "
        f"{abs(frame['log10_rate'].mean()) / 100:.3f} log units here. Protocol (a): "
        f"{int(summary['grouped_splits'].max())} random splits with distinct test sets, each "
        f"holding out {100 * cfg['test_fraction']:.0f} % of the groups; degree chosen by grouped "
        f"10-fold CV inside each training set. Protocol (b): train {ext['train']!r}, test "
        f"{ext['test']!r} minus glasses seen in training.")]
    best = summary.loc[summary["grouped_rrmse_pct"].idxmin()]
    verdict = "meets" if best["grouped_rrmse_pct"] <= target else "does not meet"
    sem = best["grouped_rrmse_sd_pct"] / math.sqrt(best["grouped_splits"])
    caveat = (" Model V's descriptors (n_SiOSi, f_NBO) and the V ensembles were chosen after "
              "seeing grouped scores of these glasses, so this score is optimistic "
              "(docs/dissolution.md)." if best["model"].startswith("V") else "")
    parts.append(note_html(
        f"Best grouped-random model: {best['model']} ({best['ph_measure']} pH), "
        f"{best['grouped_rrmse_pct']:.2f} +/- {best['grouped_rrmse_sd_pct']:.2f} % RRMSE over "
        f"{int(best['grouped_splits'])} splits; this {verdict} the thesis' {target} % (single "
        f"split). {int(best['splits_at_or_below_target'])} of {int(best['grouped_splits'])} "
        f"splits are at or below it; standard error of the mean {sem:.2f} points." + caveat,
        "note" if verdict == "meets" else "bad"))
    parts.append(table_html(summary, "Models: grouped-random test (mean, sd over splits) and "
                                     "A->B extrapolation"))
    return parts


def _cv_curves(curves: pd.DataFrame, specs, ph0: str) -> str:
    """RRMSE vs polynomial degree (thesis Figs. 5-1, 5-4, 5-6)."""
    curves = curves[curves["ph_measure"] == ph0]
    with_degree = [s for s in specs if s.estimator in ("poly", "ridge", "mixed")]  # GP/ens: no p
    fig, axes = _panel_grid(len(with_degree))
    for ax, spec in zip(axes, with_degree, strict=True):
        c = curves[curves["model"] == spec.name]
        ax.plot(c["degree"], 100 * c["train_rrmse"], "o-", label="train")
        ax.plot(c["degree"], 100 * c["validation_rrmse"], "s--", label="validation")
        ax.set_yscale("log")
        ax.set_title(f"Model {spec.name}")
        ax.set_xlabel("polynomial degree p")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("RRMSE (%)")
    axes[0].legend(fontsize=7)
    return figure_html(fig, f"RRMSE vs polynomial degree, grouped 10-fold CV on all data ({ph0} "
                            "pH); Model I in rate space, others in log10 rate.")


def _split_boxes(scores: pd.DataFrame, target: float) -> str:
    plt = pyplot()
    g = scores[(scores.protocol == "grouped_random")]
    fig, ax = plt.subplots(figsize=(7, 3))
    labels, data = [], []
    for (m, phm), sub in g.groupby(["model", "ph_measure"], sort=False):
        labels.append(f"{m}\n{phm}")
        data.append(100 * sub["test_rrmse"].to_numpy())
    ax.boxplot(data)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6)
    ax.axhline(target, color="r", lw=1, ls="--", label=f"thesis {target} %")
    ax.set_yscale("log")
    ax.set_ylabel("test RRMSE (%)")
    ax.legend(fontsize=7)
    return figure_html(fig, "Test RRMSE per grouped random split (protocol a).")


def _parity(parity: pd.DataFrame, specs, ph0: str, lims: tuple[float, float], seed: int) -> str:
    """Measured vs predicted log10 rate of the first grouped split, every model."""
    lo, hi = lims
    parity = parity[parity["ph_measure"] == ph0]
    fig, axes = _panel_grid(len(specs))
    for ax, spec in zip(axes, specs, strict=True):
        sub = parity[parity["model"] == spec.name]
        for role, mk in (("train", "o"), ("test", "s")):
            q = sub[sub["role"] == role]
            ax.plot(q["log10_rate"], q["predicted"], mk, ms=3, alpha=0.6, label=role)
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        degree = int(sub["degree"].iloc[0])
        t = sub[sub["role"] == "test"]
        ax.set_title(f"{spec.name} ({degree_code(degree) if degree <= 0 else f'p={degree}'}) "
                     f"test {100 * rrmse(t['predicted'], t['log10_rate']):.1f}%", fontsize=8)
        ax.set_xlabel("measured log10 rate")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("predicted log10 rate")
    axes[0].legend(fontsize=7)
    return figure_html(fig, f"Parity, grouped split seed {seed} ({ph0} pH).")


def _rate_vs_ph(frame: pd.DataFrame, curves: pd.DataFrame, show: list[str], ph0: str) -> str:
    """Measured rates per glass with the fitted models' curves over pH."""
    plt = pyplot()
    curves = curves[curves["ph_measure"] == ph0]
    glasses = glass_order(frame)
    ncol = 4
    nrow = math.ceil(len(glasses) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 2.6 * nrow), squeeze=False, sharey=True)
    for ax, gl in zip(axes.flat, glasses, strict=False):
        sub = frame[frame["glass"] == gl]
        ax.plot(sub["pH"], sub["log10_rate"], "k.", ms=4)
        for name in show:
            c = curves[(curves["glass"] == gl) & (curves["model"] == name)]
            ax.plot(c["pH"], c["predicted"], lw=1, label=f"{name} (p={int(c['degree'].iloc[0])})")
        ax.set_title(f"{gl}  n_c={sub['n_c'].iloc[0]:.3f}", fontsize=7)
        ax.set_xlabel("pH")
    for ax in axes.flat[len(glasses):]:
        ax.axis("off")
    axes[0][0].set_ylabel("log10 rate")
    axes[0][0].legend(fontsize=6)
    return figure_html(fig, "Rate vs pH per glass, models fitted on all data (CV degree).")


def _rate_vs_nc(table: pd.DataFrame, ph0: str) -> str:
    plt = pyplot()
    table = table[table["ph_measure"] == ph0]
    fig, ax = plt.subplots(figsize=(4, 3))
    for target_ph, mk in zip(NC_TREND_PH, ("o", "s"), strict=True):
        sel = table[table["target_pH"] == target_ph]
        ax.errorbar(sel["n_c"], sel["mean"], yerr=sel["sd"], fmt=mk, ms=4, capsize=2,
                    label=f"pH {target_ph:g} +/- 0.5")
        if len(sel) > 1:
            k, b = sel["trend_slope"].iloc[0], sel["trend_intercept"].iloc[0]
            xs = np.linspace(sel["n_c"].min(), sel["n_c"].max(), 2)
            ax.plot(xs, k * xs + b, "--", lw=0.8)
    ax.set_xlabel("n_c (constraints per skeleton atom)")
    ax.set_ylabel("log10 rate (group mean)")
    ax.legend(fontsize=7)
    return figure_html(fig, "Rate vs number of constraints per atom at pH 9 and 12 (thesis "
                            "Fig. 5-5).")


def _extrapolation(ep: pd.DataFrame, ph0: str, lims: tuple[float, float]) -> str:
    """A->B parity of Models III, IV, IV-b (thesis Fig. 5-9)."""
    lo, hi = lims
    ep = ep[ep["ph_measure"] == ph0]
    keys = [(m, r) for m in ("III", "IV", "IV-b") for r in ep["degree_rule"].unique()
            if ((ep["model"] == m) & (ep["degree_rule"] == r)).any()]
    fig, axes = _panel_grid(len(keys))
    for ax, (m, r) in zip(axes, keys, strict=True):
        sub = ep[(ep["model"] == m) & (ep["degree_rule"] == r)]
        for role, mk in (("train", "o"), ("test", "s")):
            q = sub[sub["role"] == role]
            ax.plot(q["log10_rate"], q["predicted"], mk, ms=3, alpha=0.6, label=role)
        t = sub[sub["role"] == "test"]
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{m} p={int(sub['degree'].iloc[0])} ({r}): "
                     f"{100 * rrmse(t['predicted'], t['log10_rate']):.1f}%", fontsize=8)
    axes[0].legend(fontsize=7)
    return figure_html(fig, "A->B extrapolation (thesis Fig. 5-9): trained on the train family, "
                            "tested on unseen glasses of the test family.")


def report_parts(res: Mapping[str, Any], predictions: pd.DataFrame | None,
                 cfg: Mapping[str, Any], table_path: str) -> list[str]:
    """HTML parts of the dissolution report section (figures inline) from the tables of
    ``run_evaluation`` (or read back from the evaluation job's files) and the defaulted
    section ``cfg``."""
    specs = resolve_models(cfg["models"], cfg["custom_models"])
    ph0 = cfg["ph_measures"][0]
    frame = frames_by_ph_measure(res["descriptors"])[ph0]
    lims = (frame["log10_rate"].min() - 0.5, frame["log10_rate"].max() + 0.5)
    parts = _notes(res["summary"], frame, cfg, table_path)
    parts.append(_cv_curves(res["curves"], specs, ph0))
    parts.append(_split_boxes(res["scores"], float(cfg["target_rrmse_pct"])))
    parts.append(_parity(res["parity"], specs, ph0, lims, cfg["seed"]))
    curves = res["ph_curves"]
    fitted = set(curves.loc[curves["ph_measure"] == ph0, "model"])
    show = [m for m in dict.fromkeys(("III", "IV", cfg["predict"]["model"])) if m in fitted]
    parts.append(_rate_vs_ph(frame, res["ph_curves"], show, ph0))
    parts.append(_rate_vs_nc(res["rate_vs_nc"], ph0))
    if not res["extrapolation_predictions"].empty:
        parts.append(_extrapolation(res["extrapolation_predictions"], ph0, lims))
    coefs = res["coefficients"]
    lin = coefs[(coefs["degree"] == 1) & (coefs["ph_measure"] == ph0)]
    parts.append(table_html(
        lin[["model", "term", "coef_normalised", "coef_physical", "unit_physical"]],
        "Linear (p = 1) coefficients fitted on all data. coef_normalised: per unit of the "
        "min-max normalised input (Eq. 5-7), in log10(rate) (Model I: in rate); coef_physical: "
        "per physical unit as stated."))
    if predictions is not None and not predictions.empty:
        parts.append(table_html(predictions, "Predictions for the configured inputs (status "
                                             "out_of_range: outside the training descriptors; "
                                             "refused: outside the constraint rules)."))
    return parts
