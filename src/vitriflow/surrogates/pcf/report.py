"""Report section 80 (PCF surrogate): Fig. 9-style held-out grid, metrics, training curves."""

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
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL

TITLE = "Pair-correlation-function surrogate"
# targets on held-out compositions
TARGET_R2, TARGET_DR_A, TARGET_DH_PCT, TARGET_PREDICT_MS = 0.95, 0.02, 5.0, 10.0
_COLORS = {"autoencoder": "tab:red", "pca": "tab:blue", "direct": "tab:green"}


def write_skipped(path, reason: str) -> None:
    write_section(path, TITLE, note_html(f"PCF surrogate skipped: {reason}"),
                  headlines=[headline("PCF surrogate", "skipped", reason)])


def _pick_examples(truth: pd.DataFrame, n: int) -> list[int]:
    """Up to n held-out samples, round-robin over pairs (cation-oxygen pairs first)."""
    from vitriflow.surrogates.pcf.evaluate import is_cation_oxygen

    pairs = sorted(truth["pair"].unique(), key=lambda p: (not is_cation_oxygen(p), p))
    queues = {p: list(truth.loc[truth["pair"] == p, "sample"]) for p in pairs}
    out: list[int] = []
    while len(out) < n and any(queues.values()):
        for p in pairs:
            if queues[p] and len(out) < n:
                q = queues[p]
                out.append(int(q.pop(len(q) // 2 if len(out) % 2 else 0)))
    return out


def grid_figure(dataset: pd.DataFrame, predictions: pd.DataFrame, default_model: str, n: int = 9):
    plt = pyplot()

    test = dataset[dataset["split"] == "test"]
    truth = test.drop_duplicates("sample")
    samples = _pick_examples(truth, n)
    cols = 3
    rows = max(1, -(-len(samples) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    models = [default_model] + sorted(set(predictions["model"]) - {default_model})
    for ax, s in zip(axes.ravel(), samples, strict=False):
        t = test[test["sample"] == s]
        r, g, sd = t["r_A"].to_numpy(), t["g_mean"].to_numpy(), t["g_std"].to_numpy()
        ax.fill_between(r, g - sd, g + sd, color="0.75", lw=0, label="MD replica spread")
        ax.plot(r, g, color="k", lw=1.2, label="MD (replica mean)")
        for m in models:
            p = predictions[(predictions["model"] == m) & (predictions["sample"] == s)]
            main = m == default_model
            mse = float(((p["g_pred"].to_numpy() - g) ** 2).mean())
            ax.plot(p["r_A"], p["g_pred"], color=_COLORS.get(m, "m"), lw=1.4 if main else 0.9,
                    ls="-" if main else "--", label=f"{m} (MSE {mse:.3g})")
        row = t.iloc[0]
        ax.set_title(f"{row['pair']}  |  {row['system']} {row['label']}", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
        ax.set_xlabel("r (Å)", fontsize=8)
        ax.set_ylabel("g(r)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(samples):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def training_figure(training: dict):
    plt = pyplot()

    params = ["n_estimators", "max_depth", "max_features", "min_samples_split"]
    kinds = [k for k in ("autoencoder", "pca", "direct") if k in training]
    has_ae = "history" in training.get("autoencoder", {})
    ncols = len(params) + (1 if has_ae else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(3.2 * ncols, 2.8), squeeze=False)
    axes = axes[0]
    if has_ae:
        h = training["autoencoder"]["history"]
        axes[0].semilogy(h["epoch"], h["train_mse"], label="train")
        axes[0].semilogy(h["epoch"], h["val_mse"], label="validation")
        axes[0].axvline(training["autoencoder"]["best_epoch"], color="0.5", ls=":", lw=1)
        axes[0].set_xlabel("epoch")
        axes[0].set_ylabel("MSE (scaled g)")
        axes[0].set_title("autoencoder", fontsize=9)
        axes[0].legend(fontsize=7)
    for ax, p in zip(axes[1 if has_ae else 0:], params, strict=True):
        for k in kinds:
            cv = pd.DataFrame(training[k]["cv"])
            best = training[k]["best_params"]
            col = f"param_{p}"
            if col not in cv.columns:
                continue
            m = np.ones(len(cv), bool)
            for q, v in best.items():  # others at their best value: a one-parameter slice (Fig. 7)
                if q != p and f"param_{q}" in cv.columns:
                    m &= cv[f"param_{q}"].astype(str) == str(v)
            s = cv[m].copy()
            s["x"] = s[col].astype(str)
            # relative to the fold variance of the latent targets, so models share an axis
            scale = float(-cv["cv_neg_mse"].max()) or 1.0
            ax.plot(s["x"], -s["cv_neg_mse"] / scale, "o-", color=_COLORS.get(k), label=f"{k} CV")
            ax.plot(s["x"], -s["train_neg_mse"] / scale, "x:", color=_COLORS.get(k),
                    label=f"{k} train")
        ax.set_xlabel(p, fontsize=8)
        ax.set_ylabel("MSE / best CV MSE", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def latent_figure(training: dict):
    plt = pyplot()

    kinds = [k for k in ("autoencoder", "pca") if "latent_test" in training.get(k, {})]
    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.3 * len(kinds), 3.1), squeeze=False)
    for ax, k in zip(axes[0], kinds, strict=True):
        zt = np.asarray(training[k]["latent_test"]["true"])
        zp = np.asarray(training[k]["latent_test"]["pred"])
        ax.scatter(zt.ravel(), zp.ravel(), s=4, alpha=0.5, color=_COLORS[k])
        lo, hi = float(min(zt.min(), zp.min())), float(max(zt.max(), zp.max()))
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set_xlabel("latent of simulated g(r)")
        ax.set_ylabel("latent predicted by forest")
        ax.set_title(k, fontsize=9)
    fig.tight_layout()
    return fig


def verdict(metrics: pd.DataFrame, default_model: str, best_model: str,
            timings: dict | None = None) -> list[str]:
    """Sentences for the report: AE vs PCA, and the targets for the default model.
    ``timings``: kind -> {"predict_ms_per_glass", ...} from the provenance record (may be
    absent)."""
    allm = metrics[metrics["pair"] == "all"].set_index("model")
    out = []
    if {"autoencoder", "pca"} <= set(allm.index):
        a, p = allm.loc["autoencoder", "mse"], allm.loc["pca", "mse"]
        who = "beats" if a < p else "does not beat"
        out.append(f"On held-out compositions the autoencoder {who} the PCA baseline "
                   f"(curve MSE {a:.4g} vs {p:.4g}).")
    out.append(f"Lowest held-out curve MSE: {best_model}; default model used for predictions: "
               f"{default_model}.")
    d = metrics[metrics["model"] == default_model]
    r2 = float(d[d["pair"] == "all"]["r2"].iloc[0])
    co = d[d["cation_O"]]
    dr = float(co["peak_dr_max_A"].max()) if len(co) else float("nan")
    dh = float(co["peak_dh_max_pct"].max()) if len(co) else float("nan")
    ms = (timings or {}).get(default_model, {}).get("predict_ms_per_glass")
    ok = lambda c: "met" if c else "NOT met"  # noqa: E731
    speed = ("prediction time not recorded" if ms is None else
             f"prediction of one glass's partial PCFs {ms:.2f} ms "
             f"(< {TARGET_PREDICT_MS}: {ok(ms < TARGET_PREDICT_MS)})")
    out.append(
        f"Targets ({default_model}): curve R² {r2:.4f} (≥ {TARGET_R2}: {ok(r2 >= TARGET_R2)}); "
        f"worst cation–O first-peak position error {dr:.3f} Å "
        f"(≤ {TARGET_DR_A}: {ok(dr <= TARGET_DR_A)}); "
        f"worst cation–O first-peak height error {dh:.1f}% "
        f"(≤ {TARGET_DH_PCT}%: {ok(dh <= TARGET_DH_PCT)}); "
        f"{speed}."
    )
    return out


def build_section(path, dataset: pd.DataFrame, predictions: pd.DataFrame, metrics: pd.DataFrame,
                  training: dict, n_examples: int = 9, timings: dict | None = None) -> None:
    """``timings``: the provenance record's ``timings`` (kind -> train_s, predict_ms_per_glass)."""
    default, best = training["default_model"], training["best_model"]
    n_train = training["split"]["n_train_compositions"]
    n_test = training["split"]["n_test_compositions"]
    n_curves = dataset.drop_duplicates("sample").shape[0]
    parts = [
        "<p>Trained on the partial RDFs of systems "
        f"<code>{esc(', '.join(training['systems']))}</code>: {n_curves} (composition, pair) "
        f"curves, replicas averaged (their spread kept as the target uncertainty); {n_train} "
        f"training and {n_test} held-out compositions (grouped split, seed {training['seed']}). "
        f"Fingerprint: {esc(', '.join(training['fingerprint']['feature_names']))}. Models: "
        "convolutional autoencoder + random forest (Ayush et al.), PCA + random forest, and a "
        "forest predicting the whole curve; forest hyper-parameters by grouped K-fold CV.</p>",
    ]
    kind = "note"
    parts += [note_html(s, kind) for s in verdict(metrics, default, best, timings)]
    near = list(training["split"].get("test_nearest_mol", {}).values())  # may be absent
    if near:
        unit = "at.%" if training.get("settings", {}).get("basis", "oxide") == "element" else "mol%"
        n_far = sum(d > DOMAIN_WARN_MOL for d in near)
        parts.append(note_html(
            f"Held-out compositions lie {min(near):.1f}–{max(near):.1f} {unit} from the nearest "
            f"training composition; {n_far} of {len(near)} beyond {DOMAIN_WARN_MOL:g} {unit}, "
            "where 'vitriflow pcf predict' warns of extrapolation.", "bad" if n_far else kind))
    if n_test < 5:
        parts.append(note_html(f"Only {n_test} held-out compositions: the metrics below are "
                               "indicative, not a validation (see config/pcf_validation.yaml for "
                               "the validation family).", "bad"))
    parts.append(figure_html(grid_figure(dataset, predictions, default, n_examples),
                             "Predicted vs simulated partial g(r) of held-out glasses (paper "
                             "Fig. 9 style); grey band: spread over MD replicas."))
    cols = ["model", "n_curves", "mse", "r2", "latent_r2", "reconstruction_mse", "peak_dr_mean_A",
            "peak_dr_max_A", "peak_dh_mean_pct", "peak_dh_max_pct", "replica_rms_std",
            "noise_floor_mse"]
    allm = metrics[metrics["pair"] == "all"][cols].copy()
    # this run's timings, from the provenance record
    for key in ("train_s", "predict_ms_per_glass"):
        allm[key] = [(timings or {}).get(m, {}).get(key, np.nan) for m in allm["model"]]
    parts.append(table_html(allm, "Held-out metrics over all pairs (MSE in g² units; peak errors: "
                                  "first-peak position |Δr| in Å and height |Δh|/h in %; "
                                  "reconstruction_mse: reducer alone; noise_floor_mse: expected "
                                  "error of the replica mean itself, the lowest MSE any model can "
                                  "reach; train_s and predict_ms_per_glass: this run's timings, "
                                  "kept in the provenance record)."))
    per = metrics[metrics["pair"] != "all"][["model", "pair", "n_curves", "cation_O", "mse", "r2",
                                             "peak_dr_mean_A", "peak_dr_max_A", "peak_dh_mean_pct",
                                             "peak_dh_max_pct", "replica_rms_std",
                                             "noise_floor_mse"]]
    parts.append(table_html(per.sort_values(["pair", "model"]), "Held-out metrics per pair."))
    parts.append(figure_html(training_figure(training["models"]),
                             "Training curves: autoencoder MSE per epoch (train / validation "
                             "compositions), and forest grouped-CV MSE against each "
                             "hyper-parameter with the others at their best (paper Fig. 7)."))
    lf = latent_figure(training["models"])
    if lf is not None:
        parts.append(figure_html(lf, "Forest-predicted vs encoded latent codes of held-out curves "
                                     "(paper Fig. 8b)."))
    best_rows = pd.DataFrame(
        [{"model": k, **{p: str(v) for p, v in training["models"][k]["best_params"].items()}}
         for k in training["models"]])
    parts.append(table_html(best_rows, "Forest hyper-parameters chosen by grouped CV."))
    write_section(path, TITLE, *parts, headlines=[pcf_headline(metrics, default, n_test)])


def pcf_headline(metrics: pd.DataFrame, model: str, n_test: int) -> dict[str, str]:
    """Card: held-out curve R² of the default model against the paper's target."""
    d = metrics[(metrics["model"] == model) & (metrics["pair"] == "all")]
    r2 = float(d["r2"].iloc[0])
    return headline("PCF surrogate: held-out partial g(r)", f"R² = {r2:.3f}",
                    f"{model}, {n_test} held-out compositions; target ≥ {TARGET_R2}",
                    "good" if r2 >= TARGET_R2 else "bad")
