"""Report section 60_viscosity: RMSE table, parity plots, residuals, viscosity-1/T curves,
coverage of the predicted intervals, error inside and beyond the training data."""

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
from vitriflow.surrogates.calibration import coverage
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL
from vitriflow.surrogates.viscosity.data import PROPERTIES, target_name
from vitriflow.surrogates.viscosity.equations import EQUATION_NAMES
from vitriflow.surrogates.viscosity.evaluate import FULL_PRESET_REPORTED
from vitriflow.surrogates.viscosity.features import OXIDES, descriptors

BOUNDARY = 7.0  # log10 Pa s, split of the residuals as in Le Losq et al.


def comparison_frame(rmse: pd.DataFrame, reported: dict[str, float]) -> pd.DataFrame:
    df = rmse.copy()
    df["i-Melt 2.2 (docs/viscosity.md)"] = df["target"].map(reported)
    if {"vitriflow", "i-Melt"} <= set(df.columns):
        df["vitriflow better"] = np.where(df["vitriflow"] < df["i-Melt"], "yes", "no")
    if {"diff_ci_low", "diff_ci_high"} <= set(df.columns):
        # paired bootstrap over compositions: does the ranking survive resampling the test glasses?
        df["vitriflow - i-Melt, 95% CI"] = [
            f"[{lo:.3g}, {hi:.3g}]"
            for lo, hi in zip(df.pop("diff_ci_low"), df.pop("diff_ci_high"), strict=True)
        ]
        df["P(vitriflow lower)"] = df.pop("p_vitriflow_lower").round(2)
    if {"worst_melt_share_vitriflow", "worst_melt_share_i-Melt"} <= set(df.columns):
        # one glass can decide an RMSE ranking on a small test split: say how much it weighs
        df["worst melt's share of squared error, vitriflow / i-Melt"] = [
            f"{va:.0%} / {vb:.0%}"
            for va, vb in zip(
                df.pop("worst_melt_share_vitriflow"), df.pop("worst_melt_share_i-Melt"), strict=True
            )
        ]
    df["unit"] = [PROPERTIES[t.split(":")[0]]["unit"] for t in df["target"]]
    return df


def _parity(ax, g, name, color):
    ax.scatter(g["y_true"], g["y_pred"], s=6, alpha=0.6, color=color, label=name)


def parity_figures(preds: dict[str, pd.DataFrame], best_eq: str) -> list[str]:
    parts = []
    v = {k: p[p["split"] == "test"] for k, p in preds.items()}
    props = [p for p in PROPERTIES if any((q["property"] == p).any() for q in v.values())]
    n = len(props)
    ncol = 4
    plt = pyplot()
    fig, axes = plt.subplots(
        int(np.ceil(n / ncol)), ncol, figsize=(3.2 * ncol, 3.0 * np.ceil(n / ncol))
    )
    colors = {"vitriflow": "tab:blue", "i-Melt": "tab:orange"}
    for ax, prop in zip(np.ravel(axes), props, strict=False):
        for name, q in v.items():
            g = q[q["property"] == prop]
            if prop == "viscosity":
                g = g[g["equation"] == best_eq]
            if len(g):
                _parity(ax, g, name, colors.get(name, "gray"))
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.7)
        title = prop if prop != "viscosity" else f"viscosity ({EQUATION_NAMES[best_eq]})"
        ax.set_title(f"{title} [{PROPERTIES[prop]['unit']}]", fontsize=9)
        ax.set_xlabel("measured", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.legend(fontsize=7)
    for ax in np.ravel(axes)[n:]:
        ax.axis("off")
    fig.tight_layout()
    parts.append(
        figure_html(fig, "Parity plots on the i-Melt test split, both models on the same rows.")
    )
    return parts


def residual_figure(preds: dict[str, pd.DataFrame], eqs=("ag", "fv")) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(eqs), figsize=(5.5 * len(eqs), 3.6), squeeze=False)
    for ax, e in zip(axes[0], eqs, strict=True):
        for (name, p), c in zip(preds.items(), ("tab:blue", "tab:orange"), strict=False):
            g = p[(p["split"] == "test") & (p["property"] == "viscosity") & (p["equation"] == e)]
            r = g["y_pred"] - g["y_true"]
            hi = g["y_true"] >= BOUNDARY
            rm = lambda s: float(np.sqrt(np.mean(s**2))) if len(s) else float("nan")  # noqa: E731
            ax.scatter(
                g["T_K"][~hi],
                r[~hi],
                s=6,
                marker="o",
                color=c,
                alpha=0.6,
                label=f"{name} < 10^7 (RMSE {rm(r[~hi]):.3f})",
            )
            ax.scatter(
                g["T_K"][hi],
                r[hi],
                s=8,
                marker="^",
                color=c,
                alpha=0.6,
                label=f"{name} >= 10^7 (RMSE {rm(r[hi]):.3f})",
                facecolors="none",
            )
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xlabel("T (K)")
        ax.set_ylabel("predicted - measured (log10 Pa s)")
        ax.set_title(EQUATION_NAMES[e])
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_html(
        fig,
        "Viscosity residuals vs temperature on the test split, split at 10^7 Pa s "
        "(circles: low-viscosity domain, triangles: supercooled domain).",
    )


def reference_melts(table: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """Alkali aluminosilicates at ~66 mol% SiO2 with varying Al/(Na+K) (seed paper Fig. 2A)."""
    v = table[(table["property"] == "viscosity")]
    ok = v[(v["sio2"].between(0.62, 0.70)) & (v["mgo"] + v["cao"] < 1e-6)]
    g = ok.groupby(list(OXIDES)).size().reset_index(name="n_points")
    g = g[g["n_points"] >= 5]
    if g.empty:
        return g
    g["al_over_alk"] = g["al2o3"] / (g["na2o"] + g["k2o"])
    g = g.sort_values("al_over_alk")
    idx = np.unique(np.linspace(0, len(g) - 1, min(n, len(g))).round().astype(int))
    return g.iloc[idx].reset_index(drop=True)


def curves_figure(table: pd.DataFrame, model, imelt_model=None) -> str | None:
    ref = reference_melts(table)
    if ref.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ref)))
    v = table[table["property"] == "viscosity"]
    for (_, r), c in zip(ref.iterrows(), colors, strict=True):
        sel = np.all(
            np.isclose(
                v.loc[:, list(OXIDES)].to_numpy(float),
                r[list(OXIDES)].to_numpy(float)[None, :],
                atol=1e-9,
            ),
            axis=1,
        )
        pts = v[sel]
        k_share = r["k2o"] / max(r["na2o"] + r["k2o"], 1e-9)
        lab = f"Al/(Na+K)={r['al_over_alk']:.2f}, K/(Na+K)={k_share:.2f}"
        ax.scatter(
            1e4 / pts["T_K"], pts["value"], color=c, s=14, label=f"{lab} ({pts['split'].iloc[0]})"
        )
        T = np.linspace(pts["T_K"].min() * 0.95, pts["T_K"].max() * 1.05, 60)
        X = np.repeat(r[list(OXIDES)].to_numpy(float)[None, :], T.size, axis=0)
        pr = model.predict(X, T=T)
        ax.plot(1e4 / T, pr["viscosity_ag"], color=c, lw=1.5)
        ax.fill_between(
            1e4 / T,
            pr["viscosity_ag"] - 2 * pr["viscosity_ag_std"],
            pr["viscosity_ag"] + 2 * pr["viscosity_ag_std"],
            color=c,
            alpha=0.2,
        )
        if imelt_model is not None:
            ip = imelt_model.predict(["ag"], descriptors(X), T=T)["ag"]
            ax.plot(1e4 / T, ip, color=c, lw=1, ls="--")
    ax.set_xlabel("10^4 / T (K^-1)")
    ax.set_ylabel("log10 viscosity (Pa s)")
    ax.legend(fontsize=7)
    ax.set_title("~66 mol% SiO2 alkali aluminosilicates (Adam-Gibbs)")
    return figure_html(
        fig,
        "Viscosity vs 1/T of reference melts: points measured, solid line vitriflow "
        "(band: +-2 calibrated sigma), dashed "
        "pretrained i-Melt; all Adam-Gibbs.",
    )


def coverage_figure(pred: pd.DataFrame, targets: list[str]) -> str | None:
    """Observed vs nominal coverage of central intervals on the test split (reliability diagram),
    raw ensemble spread and calibrated sigma side by side."""
    test = pred[pred["split"] == "test"]
    if test.empty or "y_spread" not in test:
        return None
    key = np.array(
        [target_name(p, e) for p, e in zip(test["property"], test["equation"], strict=True)]
    )
    levels = np.linspace(0.05, 0.99, 40)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, col, title in zip(
        axes, ("y_spread", "y_std"), ("ensemble spread", "calibrated sigma"), strict=True
    ):
        for t in targets:
            g = test[key == t]
            if len(g):
                r = (g["y_pred"] - g["y_true"]).to_numpy()
                ax.plot(
                    levels,
                    [coverage(r, g[col].to_numpy(), lv) for lv in levels],
                    label=f"{t} (n={len(g)})",
                )
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("nominal coverage of the central interval")
    axes[0].set_ylabel("fraction of test values inside")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return figure_html(
        fig,
        "Is the uncertainty honest? Below the dashed line the model is over-confident. "
        "sigma^2 = (a spread)^2 + b^2, a and b fitted per target on the validation "
        "rows (Gaussian likelihood); the test rows above were not used.",
    )


def difference_figure(rmse: pd.DataFrame) -> str | None:
    """Forest plot: RMSE(vitriflow) - RMSE(i-Melt) per target with its bootstrap 95 % interval,
    in % of i-Melt's RMSE so that every property shares one axis."""
    need = {"vitriflow", "i-Melt", "diff_ci_low", "diff_ci_high"}
    if not need <= set(rmse.columns) or rmse.empty:
        return None
    d = rmse.sort_values("target", ascending=False).reset_index(drop=True)
    scale = 100.0 / d["i-Melt"].to_numpy(float)
    mid = (d["vitriflow"] - d["i-Melt"]).to_numpy(float) * scale
    lo, hi = d["diff_ci_low"].to_numpy(float) * scale, d["diff_ci_high"].to_numpy(float) * scale
    colors = np.where(hi < 0, "tab:blue", np.where(lo > 0, "tab:red", "0.4"))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(d) + 1.0))
    for i in range(len(d)):
        ax.plot([lo[i], hi[i]], [i, i], color=colors[i], lw=2)
        ax.plot(mid[i], i, "o", color=colors[i])
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(
        range(len(d)),
        [f"{t} (n={c})" for t, c in zip(d["target"], d["n_compositions"], strict=True)],
        fontsize=8,
    )
    ax.set_xlabel("RMSE(vitriflow) - RMSE(i-Melt), % of i-Melt's RMSE")
    fig.tight_layout()
    return figure_html(
        fig,
        "Paired bootstrap over test compositions (n = melts): point = observed "
        "difference, bar = 95 % interval. Left of 0 favours vitriflow; blue/red "
        "bars exclude 0, grey bars mean the test split cannot separate the models.",
    )


def _protocol_note(params: dict) -> str:
    """Which splits the members learned from: the test split is never one of them."""
    groups = params.get("task_groups") or [{}]
    refit = [bool(g.get("refit", params.get("refit", False))) for g in groups]
    if all(refit):
        return "early-stopped on the validation split, then refitted on train + valid"
    if any(refit):
        return (
            "early-stopped on the validation split (groups with refit: true then refitted "
            "on train + valid)"
        )
    return "trained on the training split, early-stopped on the validation split"


def _ensemble_note(params: dict) -> str:
    n_models, groups = params.get("n_models"), params.get("task_groups") or []
    if not groups:
        return f"bagged ensemble of {esc(n_models)} members"
    return (
        "one bagged ensemble per task group ("
        + "; ".join(
            f"{esc(', '.join(g['properties']))}: {esc(g.get('n_models', n_models))} members"
            + (f", also trained on {esc(', '.join(g['auxiliary']))}" if g.get("auxiliary") else "")
            for g in groups
        )
        + ")"
    )


def _group_values(params: dict, key: str, default) -> set:
    """The values ``key`` takes over the task groups (or the estimator without groups)."""
    groups = params.get("task_groups") or [{}]
    return {g.get(key, params.get(key, default)) for g in groups}


def _density_note(params: dict) -> str:
    if "pmv" not in _group_values(params, "density_prior", "none"):
        return ""
    return ("Density: the partial-molar-volume model (vitriflow.glass_density) refitted on the "
            "training densities, times a correction the network learns. ")


def _calibration_note(params: dict) -> str:
    kinds = _group_values(params, "calibration", "valid")
    notes = []
    if "oof" in kinds:
        notes.append(
            f"sigma^2 = (a spread)^2 + b^2 + (c nearest_mol)^2, fitted on composition-grouped "
            f"out-of-fold predictions of train + valid ({params.get('calibration_folds', 5)} "
            f"folds, melts within {params.get('calibration_radius_mol', 2.0):g} mol% kept "
            "together) and scaled by their split-conformal rank, so that a new glass like "
            "them falls inside the 95 % interval with probability of at least 95 %; glasses "
            f"beyond {DOMAIN_WARN_MOL:g} mol% get the rank of the far rows, never narrower")
    if "valid" in kinds:
        notes.append("sigma^2 = (a spread)^2 + b^2 fitted on the validation rows")
    if "none" in kinds:
        notes.append("raw ensemble spread")
    return "; ".join(notes)


def _bias_and_coverage(bias: pd.DataFrame | None, coverage: pd.DataFrame | None) -> list[str]:
    """Tables of the mean signed error per target and of the 95 % coverage by distance band."""
    parts = []
    if bias is not None and len(bias):
        parts.append(table_html(
            bias, "Mean signed error (prediction - measurement) per target, with its 95 % "
            "interval from a bootstrap over melts, and in K2O-bearing, MgO-bearing and "
            "(viscosity) log eta > 7 rows, and RMSE and mean signed error by distance to the "
            "nearest training melt: on the test split, and on composition-grouped "
            "cross-validation over train + valid (the fit's out-of-fold predictions; melts "
            "within 2 mol% never on both sides).", float_format="{:.4g}"))
    if coverage is not None and len(coverage):
        parts.append(table_html(
            coverage, "Fraction of measured values inside the central 95 % interval, overall "
            "and by distance to the nearest training melt of the same property (nominal 0.95). "
            "Grouped CV: sigma from a noise model fitted on the other folds' out-of-fold rows.",
            float_format="{:.3g}"))
    return parts


def _resumed_note(n: int) -> str:
    return (
        (
            f" (resumed: {n} networks came from the checkpoints of an interrupted run, their time "
            "not counted)"
        )
        if n
        else ""
    )


def _raman_note(raman: dict | None) -> str:
    if not raman:
        return ""
    c = raman.get("counts", {})
    return (
        f"; {raman.get('n_spectra')} Raman spectra ({c.get('train', 0)}/{c.get('valid', 0)}/"
        f"{c.get('test', 0)} train/valid/test, {raman.get('n_rejected')} rejected) ingested to "
        "results/surrogates/viscosity/data/raman.parquet, not a training task (as an auxiliary "
        "task of the viscosity network they did not lower its validation error; docs/viscosity.md)"
    )


def write_report(
    path,
    *,
    title: str,
    rmse: pd.DataFrame,
    preds: dict,
    table: pd.DataFrame,
    model,
    training: dict,
    ingest: dict,
    rejected: pd.DataFrame,
    imelt_model=None,
    reported: dict | None = None,
    predictions: pd.DataFrame | None = None,
    uncertainty: pd.DataFrame | None = None,
    domain: pd.DataFrame | None = None,
    bias: pd.DataFrame | None = None,
    coverage: pd.DataFrame | None = None,
) -> None:
    parts = []
    run = training.get("provenance") or training  # older records keep timings at the top level
    mode = training.get("mode", "?")
    params = training.get("params", {})
    n_models = params.get("n_models")
    ensemble = _ensemble_note(params)
    if mode == "demo":
        parts.append(
            note_html(
                f"Demo mode: a reduced ensemble ({n_models} small networks, few epochs) trained in "
                f"{run.get('fit_seconds', float('nan')):.0f} s. Numbers below are NOT the "
                "full-training results; set viscosity.mode: full to reproduce README."
            )
        )
    parts.append(
        f"<p>Physics-guided multitask network (Adam-Gibbs, MYEGA, Avramov-Milchev, VFT, free "
        f"volume; Tg, Sconf(Tg), fragility, density, Sellmeier refractive index, liquidus, "
        f"elastic modulus, CTE), {ensemble}, {_protocol_note(params)}, trained on "
        f"{esc(training.get('device'))} in {run.get('fit_seconds', float('nan')):.0f} s"
        f"{_resumed_note(run.get('resumed_networks', 0))}; "
        f"i-Melt {esc(ingest.get('imelt_version'))} data, {ingest.get('n_rows')} rows, "
        f"{ingest.get('n_rejected')} rejected{_raman_note(ingest.get('raman'))}. "
        f"{_density_note(params)}Uncertainty: {_calibration_note(params)}.</p>"
    )
    cmp = comparison_frame(rmse, reported or {})
    parts.append(
        table_html(
            cmp,
            "Test RMSE, vitriflow vs pretrained i-Melt, same rows for both models. "
            "The interval and probability come from a paired bootstrap over the test "
            "compositions (all rows of a melt resampled together, same draw for both "
            "models): an interval that contains 0 means the test split cannot tell "
            "the two models apart on that property.",
        )
    )
    forest = difference_figure(rmse)
    if forest:
        parts.append(forest)
    if len(rejected):
        parts.append(
            table_html(
                rejected.groupby(["property", "reason"]).size().reset_index(name="rows"),
                "Rows rejected at ingestion (excluded from training and evaluation).",
            )
        )
    vis = cmp[cmp["target"].str.startswith("viscosity:")]
    best_eq = vis.sort_values("vitriflow")["target"].iloc[0].split(":")[1] if len(vis) else "ag"
    parts += parity_figures(preds, best_eq)
    parts.append(residual_figure(preds, eqs=tuple(dict.fromkeys(("ag", best_eq)))))
    if uncertainty is not None and len(uncertainty):
        parts.append(
            table_html(
                uncertainty,
                "Uncertainty on the test split: fraction of measured "
                "values inside the central 68 % / 95 % interval of the prediction, with the "
                "raw ensemble spread (spread_cover_*) and with the calibrated sigma "
                "(cover_*); a, b: the noise model fitted on n_calibration rows "
                f"({_calibration_note(params)}; no a, b: too few rows, raw spread kept).",
                float_format="{:.3g}",
            )
        )
        targets = [f"viscosity:{best_eq}", "tg", "density", "refractive_index", "liquidus"]
        fig = coverage_figure(
            preds["vitriflow"], [t for t in targets if t in set(uncertainty["target"])]
        )
        if fig:
            parts.append(fig)
    if domain is not None and len(domain):
        parts.append(
            table_html(
                domain,
                f"Test RMSE inside and beyond {DOMAIN_WARN_MOL:g} mol% of the nearest "
                "training melt of the same property (distance: the mol% of the composition "
                "that must change to reach it). Beyond it a prediction is an extrapolation; "
                "'vitriflow viscosity predict' warns there, and predictions carry "
                "<property>_nearest_mol columns.",
                float_format="{:.4g}",
            )
        )
    parts += _bias_and_coverage(bias, coverage)
    fig = curves_figure(table, model, imelt_model)
    if fig:
        parts.append(fig)
    if predictions is not None and len(predictions):
        cols = [
            c
            for c in [
                "label",
                "T_K",
                "viscosity_ag",
                "viscosity_ag_std",
                "viscosity_fv",
                "tg",
                "fragility",
                "density",
                "refractive_index",
                "liquidus",
            ]
            if c in predictions
        ]
        parts.append(
            table_html(predictions[cols].head(40), "Predictions for the configured compositions.")
        )
    write_section(path, title, *parts, headlines=melt_headlines(cmp, mode))


def _eq(target: str) -> str:
    code = target.split(":")[1]
    return EQUATION_NAMES.get(code, code)


def melt_headlines(cmp: pd.DataFrame, mode: str) -> list[dict[str, str]]:
    """Cards: best-equation viscosity RMSE against i-Melt's best, and on how many targets
    vitriflow is lower (test split, same rows)."""
    vis = cmp[cmp["target"].str.startswith("viscosity:")]
    if not len(vis):
        return []
    ours = vis.loc[vis["vitriflow"].idxmin()]
    note = "" if mode == "full" else f" ({mode} ensemble, not the full preset)"
    if "i-Melt" not in cmp or cmp["i-Melt"].isna().all():
        return [
            headline(
                "Viscosity, test split",
                f"RMSE {ours['vitriflow']:.3f} log₁₀ Pa s",
                f"best equation ({_eq(ours['target'])}); no i-Melt comparison{note}",
            )
        ]
    theirs = vis.loc[vis["i-Melt"].idxmin()]
    both = cmp[cmp["vitriflow"].notna() & cmp["i-Melt"].notna()]
    lower = both[both["vitriflow"] < both["i-Melt"]]["target"].tolist()
    if mode == "full":
        card = headline(
            "Viscosity vs i-Melt, test split",
            f"{ours['vitriflow']:.3f} vs {theirs['i-Melt']:.3f} log₁₀ Pa s",
            f"RMSE of each model's best equation ({_eq(ours['target'])} / "
            f"{_eq(theirs['target'])}), same rows",
            "good" if ours["vitriflow"] < theirs["i-Melt"] else "bad",
        )
    else:  # a small ensemble is not the model: show what the full preset reaches beside it
        full = FULL_PRESET_REPORTED
        card = headline(
            f"Viscosity, {mode} ensemble vs full preset vs i-Melt",
            f"{ours['vitriflow']:.3f} / {full['rmse']:.3f} / {theirs['i-Melt']:.3f}",
            f"test-split RMSE (log₁₀ Pa s) of each best equation: this run's {mode} "
            f"ensemble ({_eq(ours['target'])}), the full preset ({_eq(full['equation'])}; "
            "docs/results.md), i-Melt (same rows)",
        )
    return [
        card,
        headline(
            "Targets where vitriflow is lower than i-Melt",
            f"{len(lower)} of {len(both)}",
            "lower on: " + (", ".join(lower) or "none") + note,
        ),
    ]
