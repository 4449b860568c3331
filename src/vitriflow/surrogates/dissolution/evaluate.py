"""Evaluation protocols and everything the evaluation job writes.

Protocols: (a) random grouped split: whole (glass, initial pH) groups go to the test set, so
repeated measurements never straddle train and test, repeated over many seeds; (b) extrapolation
from one composition family to another (thesis Fig. 5-9), glasses present in both removed from
the test side. ``run_evaluation`` returns every table the report draws (scores, CV curves,
coefficients, parity points, A->B predictions, rate-vs-pH curves, group means vs n_c) and the
model cards, so that the report only reads and draws.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitriflow.surrogates.dissolution.data import (
    DissolutionDataError,
    composition_descriptors,
    describe,
    load_table,
    row_condition,
)
from vitriflow.surrogates.dissolution.models import (
    PolynomialRateModel,
    model_from_card,
    rmse,
    rrmse,
)
from vitriflow.surrogates.dissolution.predict import model_card
from vitriflow.surrogates.dissolution.selection import fit_fixed_degree, fit_with_cv
from vitriflow.surrogates.dissolution.specs import ModelSpec, resolve_models

log = logging.getLogger("vitriflow.surrogates.dissolution")

#: the tables ``run_evaluation`` returns -> the stem of the Parquet file the evaluation job
#: writes each to
TABLES = {"descriptors": "descriptors", "scores": "scores", "curves": "cv_curves",
          "extrapolation_predictions": "extrapolation_predictions",
          "coefficients": "coefficients", "summary": "models_table", "parity": "parity",
          "ph_curves": "ph_curves", "rate_vs_nc": "rate_vs_nc"}
PH_GRID = np.linspace(0.5, 13.0, 101)  # pH values of the rate-vs-pH curves
NC_TREND_PH = (9.0, 12.0)  # initial pH (+/- 0.5) of the rate-vs-n_c panels (thesis Fig. 5-5)


# ----------------------------------------------------------------------------- splits
def _split_groups(groups: Sequence[str], test_fraction: float) -> tuple[np.ndarray, int]:
    """The sorted distinct groups and how many of them a split holds out."""
    if not 0 < test_fraction < 1:
        raise DissolutionDataError(
            f"dissolution.test_fraction: {test_fraction}, expected in (0, 1)")
    uniq = np.unique(np.asarray(groups))  # sorted: independent of row order
    n_test = max(1, int(round(test_fraction * len(uniq))))
    if len(uniq) - n_test < 2:
        raise DissolutionDataError(
            f"grouped split: {len(uniq)} (glass, initial pH) group(s) leave {len(uniq) - n_test} "
            f"for training with dissolution.test_fraction {test_fraction}; the inner "
            "cross-validation needs >= 2 (keep more rows with dissolution.select or lower "
            "dissolution.test_fraction)")
    return uniq, n_test


def grouped_split(groups: Sequence[str], test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask holding out round(test_fraction * n_groups) whole groups."""
    uniq, n_test = _split_groups(groups, test_fraction)
    test = np.random.default_rng(seed).choice(uniq, n_test, replace=False)
    return np.isin(np.asarray(groups), test)


def distinct_grouped_splits(groups: Sequence[str], test_fraction: float, seed: int,
                            n_splits: int) -> list[tuple[int, np.ndarray]]:
    """``(seed, test mask)`` of ``n_splits`` splits with distinct test sets: seeds seed,
    seed + 1, ... are tried in turn and a seed whose held-out groups repeat an earlier split's
    is skipped. With few groups there are fewer distinct test sets than ``n_splits``: all of
    them are used and a warning says so (repeats would only shrink the spread over splits)."""
    uniq, n_test = _split_groups(groups, test_fraction)
    n_distinct = math.comb(len(uniq), n_test)
    if n_distinct < n_splits:
        log.warning("dissolution.n_splits %d: %d groups holding out %d have only %d distinct "
                    "test sets; using %d splits", n_splits, len(uniq), n_test, n_distinct,
                    n_distinct)
        n_splits = n_distinct
    groups = np.asarray(groups)
    splits, seen, k = [], set(), seed
    while len(splits) < n_splits:
        te = grouped_split(groups, test_fraction, k)
        held_out = tuple(np.unique(groups[te]))
        if held_out not in seen:
            seen.add(held_out)
            splits.append((k, te))
        k += 1
    return splits


# ----------------------------------------------------------------------------- protocols
def _target_rrmse(model, frame: pd.DataFrame) -> float:
    return rrmse(model.predict_target(frame), frame[model.spec.target])


def _score(model, frame: pd.DataFrame) -> dict[str, float]:
    pred = model.predict(frame)
    meas = frame["log10_rate"].to_numpy()
    out = {"rrmse": rrmse(pred, meas), "rmse": rmse(pred, meas),
           "rrmse_target": _target_rrmse(model, frame)}
    if model.spec.target == "rate":
        out["n_floored"] = int(np.sum(model.predict_target(frame) <= model.rate_floor))
    return out


def _predictions(fitted, frame: pd.DataFrame, masks, **labels) -> list[pd.DataFrame]:
    """Measured and predicted log10 rate of the rows of each (mask, role), ``labels`` added
    as columns."""
    out = []
    for mask, role in masks:
        p = frame.loc[mask, ["glass", "group", "pH", "n_c", "log10_rate"]].copy()
        p["predicted"] = fitted.predict(frame[mask])
        p["role"] = role
        for k, v in labels.items():
            p[k] = v
        out.append(p)
    return out


def evaluate_grouped(frame: pd.DataFrame, specs: Sequence[ModelSpec], *, n_splits: int,
                     seed: int, test_fraction: float, max_degree: int, cv_folds: int,
                     ph_measure: str, alphas: Sequence[float] | None,
                     parity: list | None = None) -> pd.DataFrame:
    """Protocol (a): one row per (model, split) with the chosen degree and train/test metrics;
    the splits' test sets are distinct (``distinct_grouped_splits``). A ``parity`` list
    receives the first split's measured and predicted rates (train and test rows)."""
    rows = []
    splits = distinct_grouped_splits(frame["group"].to_numpy(), test_fraction, seed, n_splits)
    for i, (split_seed, te) in enumerate(splits):
        train, test = frame[~te], frame[te]
        assert not set(train["group"]) & set(test["group"])
        cache: dict = {}  # ensembles reuse members fitted on this training set
        for spec in specs:
            model, _ = fit_with_cv(train, spec, max_degree, cv_folds, alphas, cache)  # train only
            tr, ts = _score(model, train), _score(model, test)
            rows.append({"protocol": "grouped_random", "ph_measure": ph_measure,
                         "model": spec.name, "degree_rule": "cv",
                         "split_seed": split_seed, "degree": model.degree,
                         "alpha": getattr(model, "alpha", np.nan),
                         "n_train": len(train), "n_test": len(test),
                         "test_point_fraction": len(test) / len(frame),
                         **{f"train_{a}": b for a, b in tr.items()},
                         **{f"test_{a}": b for a, b in ts.items()}})
            if parity is not None and i == 0:
                parity += _predictions(model, frame, ((~te, "train"), (te, "test")),
                                       model=spec.name, ph_measure=ph_measure,
                                       degree=model.degree, split_seed=split_seed)
    return pd.DataFrame(rows)


def family_masks(frame: pd.DataFrame, train_query: str,
                 test_query: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the train and test families (pandas queries over oxide mol %); glasses in both
    families are kept in training and removed from the test side, so the test is truly
    unseen."""
    view = pd.DataFrame({c[2:]: frame[c] * 100 for c in frame if c.startswith("x_")})
    tr, te = (row_condition(view, q, f"dissolution.extrapolation.{key}")
              for key, q in (("train", train_query), ("test", test_query)))
    te = te & ~np.isin(frame["glass"], frame.loc[tr, "glass"].unique())
    if not tr.any() or not te.any():
        raise DissolutionDataError(
            f"dissolution.extrapolation: train {train_query!r} selects {int(tr.sum())} rows, "
            f"test {test_query!r} selects {int(te.sum())} unseen rows; both must be non-empty"
        )
    n_groups = frame.loc[tr, "group"].nunique()
    if n_groups < 2:  # the degree is chosen by grouped CV inside the training family
        raise DissolutionDataError(
            f"dissolution.extrapolation.train: {train_query!r} selects {n_groups} (glass, pH) "
            "group; expected at least 2 for the cross-validation inside the training family")
    return tr, te


def evaluate_extrapolation(frame: pd.DataFrame, specs: Sequence[ModelSpec], *, train_query: str,
                           test_query: str, max_degree: int, cv_folds: int, ph_measure: str,
                           degree: int | str, alphas: Sequence[float] | None):
    """Protocol (b): train on one family, test on another. Returns (scores, predictions).

    ``degree`` is "cv" (grouped K-fold inside the training family) or a fixed integer."""
    tr, te = family_masks(frame, train_query, test_query)
    rows, preds, cache = [], [], {}
    for spec in specs:
        if degree == "cv":
            model, _ = fit_with_cv(frame[tr], spec, max_degree, cv_folds, alphas, cache)
        else:
            model = fit_fixed_degree(frame[tr], spec, int(degree), cv_folds, alphas, cache)
        s_tr, s_te = _score(model, frame[tr]), _score(model, frame[te])
        rows.append({"protocol": "extrapolation", "ph_measure": ph_measure, "model": spec.name,
                     "degree_rule": str(degree),
                     "split_seed": -1, "degree": model.degree, "n_train": int(tr.sum()),
                     "n_test": int(te.sum()), "test_point_fraction": float(te.mean()),
                     **{f"train_{a}": b for a, b in s_tr.items()},
                     **{f"test_{a}": b for a, b in s_te.items()}})
        preds += _predictions(model, frame, ((tr, "train"), (te, "test")), model=spec.name,
                              ph_measure=ph_measure, degree_rule=str(degree),
                              degree=model.degree)
    return pd.DataFrame(rows), pd.concat(preds, ignore_index=True)


# ----------------------------------------------------------------------------- tables
def degree_code(d: int) -> str:
    return {0: "GP", -1: "ens"}.get(int(d), str(int(d)))


def summary_table(scores: pd.DataFrame, target_rrmse_pct: float) -> pd.DataFrame:
    """One row per (model, pH measure): grouped-random mean +/- sd over splits, and A->B per
    degree rule ("cv" or a fixed degree)."""
    g = scores[scores.protocol == "grouped_random"].groupby(["model", "ph_measure"], sort=False)

    def sd(s):
        return 100 * s.std(ddof=1) if len(s) > 1 else np.nan

    def degrees(s):
        return ",".join(degree_code(d) + f"x{n}" for d, n in sorted(s.value_counts().items()))

    a = g.agg(grouped_rrmse_pct=("test_rrmse", lambda s: 100 * s.mean()),
              grouped_rrmse_sd_pct=("test_rrmse", sd),
              grouped_rmse=("test_rmse", "mean"),
              grouped_splits=("test_rrmse", "size"),
              splits_at_or_below_target=("test_rrmse",
                                         lambda s: int((100 * s <= target_rrmse_pct).sum())),
              grouped_degrees=("degree", degrees))
    e = scores[scores.protocol == "extrapolation"]
    for rule, sub in e.groupby("degree_rule", sort=False):
        sub = sub.set_index(["model", "ph_measure"])
        tag = "AB_cv" if rule == "cv" else f"AB_p{rule}"
        a = a.join(pd.DataFrame({f"{tag}_rrmse_pct": 100 * sub["test_rrmse"],
                                 f"{tag}_rmse": sub["test_rmse"],
                                 f"{tag}_degree": sub["degree"]}), how="left")
    return a.reset_index()


def markdown_table(summary: pd.DataFrame) -> str:
    """The README table: grouped-random (mean +/- sd over splits) and A->B columns."""
    ab = [c[: -len("_rrmse_pct")] for c in summary
          if c.startswith("AB_") and c.endswith("_rrmse_pct")]
    head = ["Model", "pH measure", "grouped RRMSE % (mean ± sd)", "grouped RMSE (log10)", "splits",
            "degrees (CV)"]
    for tag in ab:
        rule = "CV degree" if tag == "AB_cv" else f"degree {tag[4:]}"
        head += [f"A→B RRMSE % ({rule})", f"A→B RMSE ({rule})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.to_dict("records"):
        cells = [r["model"], r["ph_measure"],
                 f"{r['grouped_rrmse_pct']:.2f} ± {r['grouped_rrmse_sd_pct']:.2f}",
                 f"{r['grouped_rmse']:.3f}", int(r["grouped_splits"]), r["grouped_degrees"]]
        for tag in ab:
            deg = ("" if tag != "AB_cv" or r[tag + "_degree"] <= 0
                   else f" (p={int(r[tag + '_degree'])})")
            cells += [f"{r[tag + '_rrmse_pct']:.2f}{deg}", f"{r[tag + '_rmse']:.3f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def glass_order(frame: pd.DataFrame) -> list[str]:
    """Glasses sorted by n_c."""
    return list(frame.groupby("glass")["n_c"].first().sort_values().index)


def ph_curves(frame: pd.DataFrame, cards: Mapping[str, Mapping[str, Any]],
              ph_measure: str) -> pd.DataFrame:
    """Each fitted model's log10 rate over ``PH_GRID`` for every glass of ``frame`` (the
    report's rate-vs-pH panels), predicted from the model cards."""
    models = {k.split("@")[0]: model_from_card(c) for k, c in cards.items()
              if k.endswith(f"@{ph_measure}")}
    parts = []
    for gl in glass_order(frame):
        sub = frame[frame["glass"] == gl]
        comp = {c[2:]: float(sub[c].iloc[0]) for c in sub
                if c.startswith("x_") and sub[c].iloc[0] > 0}
        desc = composition_descriptors(comp, PH_GRID)
        for name, m in models.items():
            parts.append(pd.DataFrame({"ph_measure": ph_measure, "model": name, "glass": gl,
                                       "pH": PH_GRID, "predicted": m.predict(desc),
                                       "degree": m.degree}))
    return pd.concat(parts, ignore_index=True)


def rate_vs_nc(frame: pd.DataFrame, ph_measure: str) -> pd.DataFrame:
    """Group means and sd of log10 rate vs n_c at the initial pH values of ``NC_TREND_PH``
    (+/- 0.5), with the least-squares line through each pH's means (thesis Fig. 5-5)."""
    gm = frame.groupby("group").agg(n_c=("n_c", "first"), pH_initial=("pH_initial", "first"),
                                    mean=("log10_rate", "mean"), sd=("log10_rate", "std"))
    parts = []
    for target_ph in NC_TREND_PH:
        sel = gm[(gm["pH_initial"] - target_ph).abs() <= 0.5].copy()
        k, b = np.polyfit(sel["n_c"], sel["mean"], 1) if len(sel) > 1 else (np.nan, np.nan)
        sel["target_pH"], sel["trend_slope"], sel["trend_intercept"] = target_ph, k, b
        parts.append(sel.reset_index())
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "ph_measure", ph_measure)
    return out


# ----------------------------------------------------------------------------- the job
def run_evaluation(table_path: str | Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the evaluation job writes, for the defaulted ``dissolution`` section
    ``cfg``: the ``TABLES`` (data frames) and ``cards`` (model key -> card)."""
    df = load_table(table_path, cfg)
    specs = resolve_models(cfg["models"], cfg["custom_models"])
    ext = cfg["extrapolation"]
    kw = {"max_degree": cfg["max_degree"], "cv_folds": cfg["cv_folds"],
          "alphas": cfg["ridge_alphas"] or None}
    out: dict[str, list] = {k: [] for k in TABLES}
    cards: dict[str, Any] = {}
    for ph_measure in cfg["ph_measures"]:
        frame = describe(df, ph_measure)
        out["descriptors"].append(frame.assign(ph_measure=ph_measure))
        out["scores"].append(evaluate_grouped(
            frame, specs, n_splits=cfg["n_splits"], seed=cfg["seed"],
            test_fraction=cfg["test_fraction"], ph_measure=ph_measure, parity=out["parity"], **kw))
        if ext["enabled"]:
            for degree in ext["degrees"]:
                s, p = evaluate_extrapolation(frame, specs, train_query=ext["train"],
                                              test_query=ext["test"], ph_measure=ph_measure,
                                              degree=degree, **kw)
                out["scores"].append(s)
                out["extrapolation_predictions"].append(p)
        cache: dict = {}
        for spec in specs:
            model, curve = fit_with_cv(frame, spec, **kw, cache=cache)
            curve["ph_measure"] = ph_measure
            out["curves"].append(curve)
            cards[f"{spec.name}@{ph_measure}"] = model_card(model, frame, curve, ph_measure)
            c = model.coefficients()
            c["ph_measure"], c["degree"], c["fit"] = ph_measure, model.degree, "cv_degree"
            out["coefficients"].append(c)
            if spec.estimator == "poly" and model.degree != 1:
                # the interpretable linear fit (thesis Figs. 5-14c, 5-15c)
                c = PolynomialRateModel(spec, 1).fit(frame).coefficients()
                c["ph_measure"], c["degree"], c["fit"] = ph_measure, 1, "linear"
                out["coefficients"].append(c)
        out["ph_curves"].append(ph_curves(frame, cards, ph_measure))
        out["rate_vs_nc"].append(rate_vs_nc(frame, ph_measure))
    res: dict[str, Any] = {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame()
                           for k, v in out.items() if k != "summary"}
    res["summary"] = summary_table(res["scores"], cfg["target_rrmse_pct"])
    res["cards"] = cards
    return res
