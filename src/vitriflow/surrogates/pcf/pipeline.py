"""Train every configured PCF model on one grouped split, tune forests by grouped CV, evaluate.

``train_and_evaluate(dataset, settings)`` is what the workflow's ``pcf_train`` rule runs. The
held-out compositions are chosen once (``grouped_split``); reducers, forest tuning (grouped
K-fold over training compositions only, as in the paper's Fig. 7) and final fits never see them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GridSearchCV, GroupKFold

from vitriflow.config import thaw
from vitriflow.io import atomic_path
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL, nearest_training_mol
from vitriflow.surrogates.pcf.data import PCFDataset
from vitriflow.surrogates.pcf.evaluate import curve_metrics, grouped_split, latent_r2
from vitriflow.surrogates.pcf.fingerprint import PCFFingerprint, element_fractions, split_pair
from vitriflow.surrogates.pcf.models import KINDS, PCFSurrogate

log = logging.getLogger("vitriflow.surrogates.pcf")


@dataclass
class PCFPredictor:
    """A trained surrogate with its fingerprint and r-grid: composition in, partial g(r) out.

    ``domain``: the unique training compositions (m, len(fingerprint.components)), as the
    fingerprint's component fractions (oxide mole fractions, or atomic fractions with
    ``basis: element``); None in a model file that holds no domain (no distance, no warning).
    """

    model: PCFSurrogate
    fingerprint: PCFFingerprint
    r: np.ndarray
    pairs: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)
    domain: np.ndarray | None = None  # a class default: a pickle without it loads with None

    def glass_pairs(self, fractions: dict[str, float]) -> list[str]:
        """The trained pairs whose two species are present in the glass."""
        x = (element_fractions(fractions) if self.info.get("basis", "oxide") == "oxide"
             else fractions)
        return [p for p in self.pairs if all(x.get(el, 0) > 0 for el in split_pair(p))]

    def predict(self, fractions: dict[str, float], pairs=None) -> tuple[list[str], np.ndarray]:
        """All partial g(r) of one glass (or the listed pairs): (pairs, curves (n_pairs, L))."""
        pairs = list(pairs) if pairs is not None else self.glass_pairs(fractions)
        unknown = [p for p in pairs if p not in self.pairs]
        if unknown:
            raise ValueError(f"pcf predictor: pairs {unknown} were not trained (trained: "
                             f"{list(self.pairs)})")
        X = np.vstack([self.fingerprint.encode(fractions, p) for p in pairs])
        return pairs, self.model.predict(X)

    @property
    def domain_unit(self) -> str:
        """Unit of :meth:`nearest_mol`: mol% of oxides, or at.% with ``basis: element``."""
        return "at.%" if self.info.get("basis", "oxide") == "element" else "mol%"

    def nearest_mol(self, fractions: dict[str, float]) -> float | None:
        """How much of the glass (mol%, or at.% for an element basis) must change to reach the
        nearest training composition: half the L1 distance between component-fraction vectors,
        as for the melt surrogate. None for a model saved without its domain."""
        if self.domain is None:
            return None
        fr = self.fingerprint._check_fractions(fractions)
        x = np.array([[fr.get(c, 0.0) for c in self.fingerprint.components]])
        return float(nearest_training_mol(x, self.domain)[0])

    def domain_warning(self, label: str, fractions: dict[str, float]) -> str | None:
        """One warning line when the glass lies beyond DOMAIN_WARN_MOL of every training
        composition (the style of the viscosity CLI); None inside or without a domain."""
        dist = self.nearest_mol(fractions)
        if dist is None or dist <= DOMAIN_WARN_MOL:
            return None
        unit = self.domain_unit
        return (f"warning: {label}: outside the training data ({unit} to the nearest training "
                f"glass: {dist:.0f}); beyond {DOMAIN_WARN_MOL:g} {unit} treat its predictions as "
                "extrapolations (docs/pcf.md, 'Applicability domain')")

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            joblib.dump(self, tmp)

    @staticmethod
    def load(path: str | os.PathLike) -> PCFPredictor:
        """A saved predictor; ValueError naming the file when it is missing, truncated or not a
        PCF predictor."""
        try:
            obj = joblib.load(path)
        except FileNotFoundError:
            raise ValueError(f"{path}: file not found (written by the pcf_train rule)") from None
        except Exception as exc:  # noqa: BLE001 - unpickling raises many types for a damaged file
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            raise ValueError(f"{path}: not a readable vitriflow PCF model ({type(exc).__name__}: "
                             f"{first})") from None
        if isinstance(obj, dict) and "skipped" in obj:
            raise ValueError(f"{path}: no model - the pcf stage was skipped ({obj['skipped']})")
        if not isinstance(obj, PCFPredictor):
            raise ValueError(f"{path}: not a vitriflow PCF predictor (got {type(obj).__name__})")
        return obj


def _grid(grid: dict[str, list]) -> dict[str, list]:
    """Schema grids use null for 'no limit'; sklearn wants None (already, via YAML)."""
    out = {k: list(v) for k, v in grid.items()}
    for k, v in out.items():
        if not v:
            raise ValueError(f"pcf.forest.grid.{k}: empty list; expected at least one value")
    return out


def tune_forest(X, z, groups, grid: dict[str, list], cv_folds: int, seed: int, n_jobs: int = 1):
    """Grouped K-fold grid search of forest hyper-parameters; (best params, CV table)."""
    n_groups = len(np.unique(groups))
    folds = min(int(cv_folds), n_groups)
    if folds < 2:
        raise ValueError(f"pcf.forest.cv_folds: {n_groups} training composition(s); need "
                         ">= 2 for CV")
    search = GridSearchCV(RandomForestRegressor(random_state=seed), _grid(grid),
                          cv=GroupKFold(n_splits=folds), scoring="neg_mean_squared_error",
                          return_train_score=True, n_jobs=n_jobs, refit=False)
    search.fit(X, z, groups=groups)
    res = search.cv_results_
    # parameter values as text ("None" for no depth limit): cv_results_ masks them otherwise
    cv = pd.DataFrame([{f"param_{k}": str(v) for k, v in p.items()} for p in res["params"]])
    for key in ("mean_test_score", "std_test_score", "mean_train_score", "rank_test_score"):
        cv[key] = res[key]
    cv = cv.rename(columns={"mean_test_score": "cv_neg_mse", "std_test_score": "cv_neg_mse_std",
                                  "mean_train_score": "train_neg_mse"})
    return dict(search.best_params_), cv


def _predict_time_ms(predictor: PCFPredictor, fractions: dict[str, float],
                     repeats: int = 20) -> float:
    predictor.predict(fractions)
    t0 = time.perf_counter()
    for _ in range(repeats):
        predictor.predict(fractions)
    return 1e3 * (time.perf_counter() - t0) / repeats


def train_and_evaluate(ds: PCFDataset, settings: dict[str, Any]) -> dict[str, Any]:
    """Fit every model in ``settings['models']`` and evaluate on held-out compositions.

    Returns ``predictors`` (kind -> PCFPredictor), ``metrics`` (per model and pair),
    ``predictions`` (held-out curves, long), ``training`` (histories, CV tables, best params),
    ``timings`` (kind -> seconds of training, ms per predicted glass: run-dependent, so they go to
    the provenance record, never into a table), ``split``, ``test_nearest_mol`` (held-out
    composition -> its distance to the nearest training one, see PCFPredictor.nearest_mol) and
    ``default_model`` (configured) / ``best_model`` (lowest held-out MSE).
    """
    seed = int(settings["seed"])
    kinds = list(settings["models"])
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"pcf.models: {k!r}; expected a subset of {list(KINDS)}")
    fp = PCFFingerprint(tuple(ds.components), pair_fractions=bool(settings["pair_fractions"]))
    X = ds.features(fp)
    groups = ds.groups
    train, test = grouped_split(groups, float(settings["test_fraction"]), seed)
    pairs = ds.meta["pair"].to_numpy()
    forest_cfg = settings["forest"]
    grid = {k: list(v) for k, v in forest_cfg["grid"].items()}
    n_jobs = int(settings["threads"])
    ae_cfg = thaw(settings["autoencoder"])
    example = ds.fractions(int(test[0]))
    # the composition space learned: the training glasses' component fractions, in fingerprint order
    comp = ds.meta[[f"frac_{c}" for c in fp.components]].to_numpy(dtype=float)
    domain = np.unique(comp[train], axis=0)
    test_groups, first = np.unique(groups[test], return_index=True)
    test_nearest = dict(zip(test_groups.tolist(),
                            nearest_training_mol(comp[test][first], domain).tolist(), strict=True))
    info = {"basis": settings["basis"], "trained_on": "train split",
            "n_train_compositions": int(len(np.unique(groups[train]))),
            "n_test_compositions": int(len(np.unique(groups[test])))}

    predictors, metric_frames, pred_frames, training, timings = {}, [], [], {}, {}
    for kind in kinds:
        t0 = time.perf_counter()
        per_pair = bool(forest_cfg["per_pair"])
        n_comp = len(fp.components)
        model = PCFSurrogate(kind=kind, n_latent=int(settings["n_latent"]), autoencoder=ae_cfg,
                             random_state=seed, n_jobs=n_jobs,
                             pair_block=(n_comp, n_comp + len(fp.pairs)) if per_pair else None)
        z = model.fit_reducer(ds.y[train], groups[train])
        t_reducer = time.perf_counter() - t0
        best, cv = tune_forest(X[train], z, groups[train], grid, int(forest_cfg["cv_folds"]), seed,
                               n_jobs)
        model.forest = best
        model.fit(X[train], ds.y[train], z=z)
        t_total = time.perf_counter() - t0
        y_pred = model.predict(X[test])
        m = curve_metrics(ds.r, ds.y[test], y_pred, pairs[test], ds.y_std[test],
                          float(settings["peak_smoothing_A"]),
                          n_replicas=ds.meta["n_replicas"].to_numpy()[test])
        m.insert(0, "model", kind)
        if kind == "direct":
            m["latent_r2"] = np.nan
            m["reconstruction_mse"] = 0.0
        else:
            z_true = model.latent(ds.y[test])
            z_pred = model.predict_latent(X[test])
            m["latent_r2"] = latent_r2(z_true, z_pred)
            m["reconstruction_mse"] = float(((model.decode(z_true) - ds.y[test]) ** 2).mean())
        predictor = PCFPredictor(model, fp, ds.r, tuple(sorted(set(pairs[train]))),
                                 dict(info, kind=kind), domain=domain)
        timings[kind] = {"train_s": t_total, "reducer_s": t_reducer,
                         "predict_ms_per_glass": _predict_time_ms(predictor, example)}
        metric_frames.append(m)
        predictors[kind] = predictor
        n_test, length = len(test), len(ds.r)
        pred_frames.append(pd.DataFrame({
            "model": kind, "sample": np.repeat(test, length),
            "r_A": np.tile(ds.r, n_test), "g_pred": y_pred.ravel()}))
        entry = {"best_params": best, "cv": cv}
        if kind != "direct":
            entry["latent_test"] = {"true": z_true.tolist(), "pred": z_pred.tolist()}
        if kind == "autoencoder":
            ae = model.reducer_
            entry.update(history=ae.history_, best_epoch=ae.best_epoch_, n_val_curves=ae.n_val_)
        if kind == "pca":
            entry["explained_variance_ratio"] = model.reducer_.explained_variance_ratio_.tolist()
        training[kind] = entry
        log.info("pcf %s: held-out MSE %.4g, R2 %.4f, trained in %.1f s, best forest %s",
                 kind, m.iloc[-1]["mse"], m.iloc[-1]["r2"], t_total, best)

    metrics = pd.concat(metric_frames, ignore_index=True)
    overall = metrics[metrics["pair"] == "all"].set_index("model")["mse"]
    best_model = str(overall.idxmin())
    default = settings["default_model"]
    if default == "auto":
        default = best_model
    if default not in predictors:
        raise ValueError(f"pcf.default_model: {default!r} is not among the trained models {kinds}")
    truth = ds.meta.iloc[test].copy()
    truth["sample"] = test
    preds = pd.concat(pred_frames, ignore_index=True)
    return {"predictors": predictors, "metrics": metrics, "predictions": preds, "truth": truth,
            "training": training, "timings": timings, "split": {"train": train, "test": test},
            "test_nearest_mol": test_nearest,
            "default_model": default, "best_model": best_model, "fingerprint": fp}


def write_outputs(ds: PCFDataset, result: dict[str, Any], settings: dict[str, Any],
                  systems: list[str], out: dict[str, str], prov: dict[str, Any]) -> None:
    """Write dataset, predictions, metrics (Parquet with provenance), training JSON, default model.

    The run's timings go into the provenance record (``prov["timings"]``, per model),
    not the tables.
    """
    from vitriflow.io import write_json, write_table

    prov = {**prov, "timings": result["timings"]}

    train, test = result["split"]["train"], result["split"]["test"]
    split = np.full(len(ds.meta), "train", dtype=object)
    split[test] = "test"
    meta = ds.meta.assign(sample=np.arange(len(ds.meta)), split=split)
    long = PCFDataset(ds.r, ds.y, ds.y_std, meta, ds.components).to_long()
    write_table(long, out["dataset"], prov)
    write_table(result["predictions"], out["predictions"], prov)
    write_table(result["metrics"], out["metrics"], prov)
    models = {}
    for kind, entry in result["training"].items():
        e = dict(entry)
        e["cv"] = e["cv"].to_dict("list")
        e["best_params"] = {k: v for k, v in e["best_params"].items()}
        models[kind] = e
    groups = ds.groups
    training = {
        "systems": list(systems), "seed": int(settings["seed"]),
        "default_model": result["default_model"], "best_model": result["best_model"],
        "fingerprint": result["fingerprint"].to_dict(), "settings": settings,
        "split": {"n_train_compositions": int(len(np.unique(groups[train]))),
                  "n_test_compositions": int(len(np.unique(groups[test]))),
                  "test_compositions": sorted(set(groups[test])),
                  "test_nearest_mol": result.get("test_nearest_mol", {})},
        "models": models, "provenance": prov,
    }
    write_json(training, out["training"])
    predictor = result["predictors"][result["default_model"]]
    predictor.info["provenance"] = prov
    predictor.save(out["model"])


def write_skipped_outputs(out: dict[str, str], reason: str, prov: dict[str, Any]) -> None:
    """Outputs of a skipped stage: empty tables, a training JSON and a model file
    naming the reason."""
    from vitriflow.io import write_json, write_table

    write_table(pd.DataFrame({"pair": pd.Series(dtype=str)}), out["dataset"], prov)
    write_table(pd.DataFrame({"model": pd.Series(dtype=str)}), out["predictions"], prov)
    write_table(pd.DataFrame({"model": pd.Series(dtype=str)}), out["metrics"], prov)
    write_json({"skipped": reason, "provenance": prov}, out["training"])
    with atomic_path(out["model"]) as tmp:
        joblib.dump({"skipped": reason}, tmp)
