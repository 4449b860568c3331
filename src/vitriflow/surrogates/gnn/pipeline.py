"""Dataset, grouped cross-validation and outputs of the GNN surrogate (rule ``gnn_train``).

The question the stage answers: given the quenched MD cells of a composition family, how well
does a graph network predict a per-structure property (energy per atom by default) for
compositions it has not seen, and does the structure tell more than the composition does?
Every structure gets an out-of-fold prediction from folds grouped by composition (replicas of a
composition are never split), beside two baselines that see only the composition: the training
mean, and ridge regression on the element fractions. Replicas of one composition differ only in
their structure, so the within-composition correlation says whether the network reads it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold

from vitriflow.io import read_structures, read_table, write_json, write_table
from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.gnn.graphs import element_fractions, structure_problem
from vitriflow.surrogates.gnn.model import GNNRegressor

log = logging.getLogger("vitriflow.surrogates.gnn")

TARGET_UNITS = {"energy_per_atom_eV": "eV/atom", "formation_energy_per_atom_eV": "eV/atom",
                "density_g_cm3": "g/cm3"}
MODEL_KEYS = ("cutoff_A", "n_rbf", "hidden", "layers", "epochs", "lr", "weight_decay", "batch_size",
              "n_models")
MODELS = ("gnn", "composition_ridge", "mean")


def load_dataset(sources: list[tuple[str, str, str]],
                 target: str) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """(structures, table, excluded) from (system, quenched.extxyz, properties.parquet) triples.

    Structures whose MD failed, whose target is missing or that cannot be made a graph (NaN
    positions, a degenerate cell: ``structure_problem``) are excluded, listed with the reason, so
    one bad cell never stops the stage; structures of different potentials are refused, since
    their energies are not comparable."""
    if target not in TARGET_UNITS:
        raise ValueError(f"gnn.target: {target!r}; expected one of {sorted(TARGET_UNITS)}")
    frames, rows, excluded = [], [], []
    for system, quenched, properties in sources:
        props, _ = read_table(properties)
        if target not in props.columns:
            raise ValueError(f"{properties}: no column {target!r} (gnn.target)")
        props = props.set_index("structure_id")
        for atoms in read_structures(quenched):
            sid = atoms.info.get("structure_id", "")
            if sid not in props.index:
                excluded.append({"structure_id": sid, "system": system,
                                 "reason": "not in the analysis table"})
                continue
            p = props.loc[sid]
            if p["status"] != "ok" or not np.isfinite(p[target]):
                why = p["reason"] if p["status"] != "ok" else f"{target} missing"
                excluded.append({"structure_id": sid, "system": system,
                                 "reason": str(why) or p["status"]})
                continue
            problem = structure_problem(atoms)
            if problem:
                excluded.append({"structure_id": sid, "system": system,
                                 "reason": f"unusable structure: {problem}"})
                continue
            frames.append(atoms)
            rows.append({"structure_id": sid, "system": system, "label": p["label"],
                         "replica": int(p["replica"]), "potential": p["potential"],
                         "n_atoms": len(atoms), "y_true": float(p[target]),
                         **{f"x_{el}": v for el, v in element_fractions(atoms).items()}})
    table = pd.DataFrame(rows)
    potentials = sorted(table["potential"].unique()) if len(table) else []
    if len(potentials) > 1:
        raise ValueError(f"gnn.systems: {sorted({s for s, _, _ in sources})} were simulated with "
                         f"{potentials}; a GNN target must come from one potential")
    xcols = sorted(c for c in table.columns if c.startswith("x_"))
    table[xcols] = table[xcols].fillna(0.0)
    return frames, table, pd.DataFrame(excluded, columns=["structure_id", "system", "reason"])


def regressor(settings: dict[str, Any], device: str = "cpu") -> GNNRegressor:
    return GNNRegressor(seed=int(settings["seed"]), device=device,
                        **{k: settings[k] for k in MODEL_KEYS})


def _subdir(checkpoint_dir: str | Path | None, name: str) -> Path | None:
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


def cross_validate(frames: list, table: pd.DataFrame, settings: dict[str, Any], device: str = "cpu",
                   checkpoint_dir: str | Path | None = None
                   ) -> tuple[pd.DataFrame, list, list, list]:
    """Out-of-fold predictions of every model; folds group the replicas of a composition.
    A held-out structure with an element that none of its fold's training structures has gets
    no prediction from any model (the GNN's embedding of that element is untrained, and neither
    the ideal-mixing reference nor ridge has a coefficient for it): its ``reason`` says so, and
    the metrics are computed on the others. Fold k's members are checkpointed under
    ``checkpoint_dir/fold{k}``. Returns (predictions, per-fold history, per-fold seconds and
    members resumed from checkpoints: both run-dependent, for the provenance record)."""
    groups = table["label"].to_numpy()
    n_groups = len(np.unique(groups))
    folds = min(int(settings["cv_folds"]), n_groups)
    xcols = [c for c in table.columns if c.startswith("x_")]
    X, y = table[xcols].to_numpy(), table["y_true"].to_numpy()
    out = table[["structure_id", "system", "label", "replica", *xcols, "y_true"]].copy()
    out["fold"] = -1
    for m in MODELS:
        out[f"pred_{m}"] = np.nan
    out["std_gnn"] = np.nan
    out["reason"] = ""  # why a structure has no out-of-fold prediction
    history, seconds, resumed = [], [], []
    for k, (tr, held) in enumerate(GroupKFold(n_splits=folds).split(X, y, groups)):
        t0 = time.perf_counter()
        est = regressor(settings, device).fit([frames[i] for i in tr], y[tr],
                                              checkpoint_dir=_subdir(checkpoint_dir, f"fold{k}"))
        why = np.array(est.problems([frames[i] for i in held]), dtype=object)
        out.loc[held, "fold"] = k
        out.loc[held, "reason"] = [f"fold {k}: {w}" if w else "" for w in why]
        for i in held[why != ""]:
            log.warning("gnn fold %d: no prediction for %s: %s", k, out.at[i, "structure_id"],
                        out.at[i, "reason"])
        te = held[why == ""]
        if len(te):
            mean, std = est.predict([frames[i] for i in te])
            ridge = RidgeCV(alphas=np.logspace(-6, 2, 17)).fit(X[tr], y[tr])
            out.loc[te, "pred_gnn"], out.loc[te, "std_gnn"] = mean, std
            out.loc[te, "pred_composition_ridge"] = ridge.predict(X[te])
            out.loc[te, "pred_mean"] = y[tr].mean()
        seconds.append(time.perf_counter() - t0)
        history.append({"fold": k, "n_train": len(tr), "n_test": len(held),
                        "n_not_predicted": len(held) - len(te),
                        "test_compositions": sorted(set(groups[held])), "members": est.history_})
        resumed.append(est.resumed_members_)
        log.info("gnn fold %d/%d: %d structures held out (%d compositions), %d predicted, %.1f s",
                 k + 1, folds, len(held), len(set(groups[held])), len(te), seconds[-1])
    return out, history, seconds, resumed


def _within_r(pred: pd.Series, true: pd.Series, label: pd.Series) -> float:
    """Pearson r of deviations from each composition's mean (compositions with >= 2 replicas)."""
    df = pd.DataFrame({"p": pred, "t": true, "g": label})
    df = df[df.groupby("g")["t"].transform("size") >= 2]
    if len(df) < 3:
        return float("nan")
    dp = df["p"] - df.groupby("g")["p"].transform("mean")
    dt = df["t"] - df.groupby("g")["t"].transform("mean")
    tiny = 1e-9 * (1.0 + float(df["t"].abs().mean()))  # rounding of a per-composition constant
    if dp.std() <= tiny or dt.std() <= tiny:
        return float("nan")
    return float(np.corrcoef(dp, dt)[0, 1])


def metrics_table(pred: pd.DataFrame, unit: str) -> pd.DataFrame:
    """MAE, RMSE, R^2, within-composition r (and the GNN's +-2 spread coverage) of each model's
    out-of-fold predictions; structures with a ``reason`` (no prediction) are counted in
    ``n_not_predicted`` and left out of every number."""
    n_all = len(pred)
    if "reason" in pred:
        pred = pred[pred["reason"] == ""]
    t = pred["y_true"]
    ss = ((t - t.mean()) ** 2).sum()
    within = pred.groupby("label")["y_true"].transform(lambda v: v - v.mean())
    multi = pred.groupby("label")["y_true"].transform("size") >= 2
    rows = []
    for m in MODELS:
        e = pred[f"pred_{m}"] - t
        rows.append({"model": m, "unit": unit, "n_structures": len(pred),
                     "n_not_predicted": n_all - len(pred),
                     "n_compositions": pred["label"].nunique(),
                     "mae": float(e.abs().mean()), "rmse": float(np.sqrt((e**2).mean())),
                     "r2": float(1 - (e**2).sum() / ss) if ss > 0 else float("nan"),
                     "within_composition_r": _within_r(pred[f"pred_{m}"], t, pred["label"]),
                     # share within +-2 raw member spreads, and within the calibrated 95 % interval
                     # (in-sample for its two parameters, fitted on these residuals)
                     "coverage_2std": (float((e.abs() <= 2 * pred["std_gnn"]).mean())
                                       if m == "gnn" else float("nan")),
                     "coverage_95_calibrated": (cal.coverage(e, pred["sigma_gnn"], 0.95)
                                                if m == "gnn" and "sigma_gnn" in pred
                                                else float("nan")),
                     "replica_spread_rms": (float(np.sqrt((within[multi] ** 2).mean()))
                                            if multi.any() else float("nan"))})
    return pd.DataFrame(rows)


def train_and_evaluate(frames: list, table: pd.DataFrame, settings: dict[str, Any],
                       device: str = "cpu",
                       checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Grouped CV of every model, then the GNN refitted on every structure (the saved model),
    whose member spread is recalibrated on the out-of-fold residuals. Structures the CV could not
    predict (an element unseen by their fold) are listed under ``not_predicted``; the final model
    has seen every element. With ``checkpoint_dir``
    every trained member is kept there, so a killed run resumes where it stopped. ``run`` (seconds
    per fold and for the final fit, members resumed) belongs in the provenance record, not
    the outputs."""
    unit = TARGET_UNITS[settings["target"]]
    pred, history, fold_seconds, fold_resumed = cross_validate(frames, table, settings, device,
                                                               checkpoint_dir)
    noise = cal.fit_noise_model(pred["pred_gnn"] - pred["y_true"], pred["std_gnn"])
    pred["sigma_gnn"] = cal.predictive_std(pred["std_gnn"].to_numpy(), noise)
    metrics = metrics_table(pred, unit)
    final = regressor(settings, device).fit(frames, table["y_true"].to_numpy(),
                                            checkpoint_dir=_subdir(checkpoint_dir, "final"))
    final.calibration_ = noise
    not_predicted = pred.loc[pred["reason"] != "",
                             ["structure_id", "system", "label", "fold", "reason"]]
    return {"predictions": pred, "metrics": metrics, "model": final,
            "training": {"device": device, "folds": history, "final": final.history_,
                         "not_predicted": not_predicted.to_dict("records"),
                         "species": final.species_, "calibration": noise},
            "run": {"timings": {"cv_fold_s": fold_seconds, "final_s": final.fit_seconds_},
                    "resumed_members": final.resumed_members_ + sum(fold_resumed)}}


def write_outputs(result: dict[str, Any], excluded: pd.DataFrame, settings: dict[str, Any],
                  outputs: dict[str, str], prov: dict[str, Any]) -> None:
    # run-dependent (timings, resumed members): never in the results
    prov = {**prov, **result["run"]}
    result["model"].save(outputs["model"], target=settings["target"], provenance=prov)
    write_table(result["predictions"], outputs["predictions"], prov)
    write_table(result["metrics"], outputs["metrics"], prov)
    write_json({"settings": settings, "excluded": excluded.to_dict("records"), **result["training"],
                "provenance": prov}, outputs["training"])


def write_skipped_outputs(outputs: dict[str, str], reason: str, settings: dict[str, Any],
                          prov: dict[str, Any]) -> None:
    """Outputs of a stage that had too little data: empty tables and the reason, no model."""

    from vitriflow.io import save_torch

    write_table(pd.DataFrame(columns=["structure_id", "y_true"]), outputs["predictions"], prov)
    write_table(pd.DataFrame(columns=["model", "rmse"]), outputs["metrics"], prov)
    write_json({"skipped": reason, "settings": settings, "provenance": prov}, outputs["training"])
    save_torch({"format": "vitriflow-gnn/skipped", "skipped": reason}, outputs["model"])
