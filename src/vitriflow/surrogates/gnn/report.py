"""Report section 85 (GNN surrogate): out-of-fold parity, structure vs composition, training."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitriflow.report import (
    esc,
    figure_html,
    headline,
    note_html,
    pyplot,
    table_html,
    write_section,
)

TITLE = "Graph-network surrogate of the quenched structures"
SMALL_FAMILY = 50  # structures; below this the cross-validated numbers are indicative
_LABELS = {"gnn": "GNN (reference + graph)", "composition_ridge": "ridge on composition",
           "mean": "training mean"}


def write_skipped(path, reason: str) -> None:
    write_section(path, TITLE, note_html(f"GNN surrogate skipped: {reason}"),
                  headlines=[headline("GNN surrogate", "skipped", reason)])


def _scale(unit: str) -> tuple[float, str]:
    """Energies are shown in meV/atom: the structural part is meV to tens of meV."""
    return (1000.0, "meV/atom") if unit == "eV/atom" else (1.0, unit)


def verdict(metrics: pd.DataFrame) -> str:
    m = metrics.set_index("model")
    g, r = m.loc["gnn"], m.loc["composition_ridge"]
    f, unit = _scale(str(g["unit"]))
    if g["n_structures"] == 0:
        return ("No structure could be predicted out of fold: every held-out composition has an "
                "element that its training folds lack, so the models were not evaluated "
                "(training.json, not_predicted).")
    within = g["within_composition_r"]
    reads = np.isfinite(within) and within >= 0.3
    text = (f"Out-of-fold RMSE: GNN {f * g['rmse']:.3g} {unit}, composition-only ridge "
            f"{f * r['rmse']:.3g} {unit}; replicas of one composition differ by "
            f"{f * g['replica_spread_rms']:.3g} {unit} (RMS), the floor for any "
            "composition-only model. ")
    if g["rmse"] < r["rmse"] and reads:
        return text + ("The network reads the structure: its predicted replica-to-replica "
                       f"differences correlate with the simulated ones (r = {within:.2f}).")
    return text + (f"The structure does not add predictive information at this data size "
                   f"(within-composition r = {within:.2f}); use the composition model, or more "
                   "structures.")


def parity_figure(pred: pd.DataFrame, unit: str):
    plt = pyplot()

    f, shown = _scale(unit)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0))
    ax = axes[0]
    # shown relative to one ideal-mixing line through all structures (display only): on the
    # absolute scale the composition trend hides every difference between the models
    xcols = [c for c in pred.columns if c.startswith("x_")]
    X = pred[xcols].to_numpy()
    line = X @ np.linalg.lstsq(X, pred["y_true"].to_numpy(), rcond=None)[0]
    t = f * (pred["y_true"] - line)
    for m, c in (("composition_ridge", "tab:blue"), ("gnn", "tab:red")):
        p = f * (pred[f"pred_{m}"] - line)
        err = f * pred["sigma_gnn" if "sigma_gnn" in pred else "std_gnn"] if m == "gnn" else None
        ax.errorbar(t, p, yerr=err, fmt="o", ms=4, color=c, alpha=0.75, lw=0.8, label=_LABELS[m])
    lo, hi = float(t.min()), float(t.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"MD, minus ideal mixing ({shown})")
    ax.set_ylabel(f"predicted out of fold, minus ideal mixing ({shown})")
    ax.legend(fontsize=7)
    ax.set_title("held-out compositions", fontsize=9)
    ax = axes[1]
    g = pred.groupby("label")
    multi = g["y_true"].transform("size") >= 2
    dt = f * (pred["y_true"] - g["y_true"].transform("mean"))[multi]
    dp = f * (pred["pred_gnn"] - g["pred_gnn"].transform("mean"))[multi]
    ax.scatter(dt, dp, s=14, color="tab:red")
    lim = float(max(np.abs(dt).max(), np.abs(dp).max(), 1e-12)) * 1.1 if len(dt) else 1.0
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set_xlabel(f"MD: replica minus its composition's mean ({shown})")
    ax.set_ylabel(f"GNN: same difference ({shown})")
    ax.set_title("does the network read the structure?", fontsize=9)
    fig.tight_layout()
    return fig


def training_figure(training: dict):
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for fold in training["folds"]:
        for h in fold["members"]:
            ax.plot(h["train_mse_scaled"], color="0.7", lw=0.6)
    for h in training["final"]:
        ax.plot(h["train_mse_scaled"], color="tab:red", lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training MSE (residual, standardised)")
    fig.tight_layout()
    return fig


def _resumed(training: dict) -> str:
    # in the provenance record, or at the top level of a training.json without one
    n = int((training.get("provenance") or training).get("resumed_members", 0))
    return f" ({n} members came from the checkpoints of an interrupted run)" if n else ""


def build_section(path, predictions: pd.DataFrame, metrics: pd.DataFrame, training: dict) -> None:
    s = training["settings"]
    unit = str(metrics["unit"].iloc[0])
    f, shown = _scale(unit)
    n, n_comp = len(predictions), predictions["label"].nunique()
    # structures the cross-validation could not predict: in the notes, not the plots
    if "reason" in predictions:
        predictions = predictions[predictions["reason"] == ""]
    parts = [
        f"<p>A crystal-graph network (CGCNN convolutions, torch-geometric; {s['layers']} layers of "
        f"{s['hidden']} units, cutoff {s['cutoff_A']} Å with periodic images, "
        f"{s['n_models']} member(s)) learns <code>{esc(s['target'])}</code> of the quenched cells "
        f"of <code>{esc(', '.join(sorted(predictions['system'].unique())))}</code> on top of a "
        f"per-element ideal-mixing reference. {n} structures of {n_comp} compositions (species "
        f"{esc(', '.join(training['species']))}); every structure is predicted by a model that "
        f"never saw its composition ({len(training['folds'])} folds grouped by composition). "
        "Ridge regression on the element fractions is the composition-only baseline. Trained on "
        f"{esc(training.get('device', 'cpu'))}{_resumed(training)}.</p>",
        note_html(verdict(metrics)),
    ]
    if n < SMALL_FAMILY:
        parts.append(note_html(f"Only {n} structures: the numbers are indicative. The stage is "
                               "meant for scans of hundreds of cells (GPU MD, "
                               "config/binary_scan.yaml).", "bad"))
    if training.get("not_predicted"):
        parts.append(note_html(f"{len(training['not_predicted'])} structure(s) have no out-of-fold "
                               "prediction: their composition has an element that none of the "
                               "structures of their training folds has, so no model can predict "
                               "them (an untrained embedding, no reference for that element). The "
                               f"metrics are over the other {n - len(training['not_predicted'])}; "
                               "listed with reasons in training.json (not_predicted). The saved "
                               "model has seen every element.", "bad"))
    if training.get("excluded"):
        parts.append(note_html(f"{len(training['excluded'])} structure(s) excluded (failed MD, "
                               "missing target or unusable structure); listed with reasons in "
                               "training.json.", "bad"))
    parts.append(figure_html(parity_figure(predictions, unit),
                             "Left: out-of-fold predictions against the MD values, both less one "
                             "least-squares ideal-mixing line through all structures (GNN error "
                             "bars: the member spread recalibrated on the out-of-fold residuals, "
                             "sigma^2 = (a spread)^2 + b^2). Right: each replica's difference from "
                             "its composition's mean, simulated against predicted; a "
                             "composition-only model sits on the horizontal line."))
    table = metrics.copy()
    for c in ("mae", "rmse", "replica_spread_rms"):
        table[c] = f * table[c]
    table["unit"] = shown
    table["model"] = table["model"].map(_LABELS)
    parts.append(table_html(table, "Out-of-fold metrics (within_composition_r: correlation of "
                                   "predicted and simulated replica-to-replica differences; "
                                   "undefined for composition-only models; coverage_2std: share of "
                                   "structures within two raw member spreads of the GNN mean; "
                                   "coverage_95_calibrated: within the recalibrated 95 % interval, "
                                   "whose two parameters were fitted on these same residuals)."))
    parts.append(figure_html(training_figure(training),
                             "Training curves: grey, the cross-validation members; red, the saved "
                             "model's members."))
    write_section(path, TITLE, *parts, headlines=[gnn_headline(metrics, s["target"])])


def gnn_headline(metrics: pd.DataFrame, target: str) -> dict[str, str]:
    """Card: GNN vs composition-only ridge, out of fold; good when the GNN is lower."""
    m = metrics.set_index("model")
    g, r = m.loc["gnn"], m.loc["composition_ridge"]
    f, unit = _scale(str(g["unit"]))
    return headline(f"GNN surrogate: {target}",
                    f"{f * g['rmse']:.3g} vs {f * r['rmse']:.3g} {unit}",
                    f"out-of-fold RMSE, GNN vs composition-only ridge, {int(g['n_structures'])} "
                    f"structures; within-composition r {g['within_composition_r']:.2f}",
                    "good" if g["rmse"] < r["rmse"] else "bad")
