"""Hyper-parameter selection inside a training set: polynomial degree (and ridge / random-effect
penalties) by grouped K-fold cross-validation over whole (glass, initial pH) groups, GP
hyper-parameters by marginal likelihood, ensembles member by member."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vitriflow.surrogates.dissolution.data import DissolutionDataError
from vitriflow.surrogates.dissolution.models import (
    AnovaGPRateModel,
    EnsembleRateModel,
    MixedRateModel,
    PolynomialRateModel,
    mixed_penalty,
    one_thread,
    penalised_solves,
    powers,
    ridge_solve,
    rrmse,
)
from vitriflow.surrogates.dissolution.specs import ModelSpec

#: what ``ridge_alphas: null`` (the schema default) means: 1e-8, 1e-7, ..., 1
DEFAULT_RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-8, 0, 9))
#: random-effect penalties tried for every (degree, alpha) of a mixed model
DEFAULT_GLASS_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def grouped_folds(groups: Sequence[str], n_folds: int) -> list[np.ndarray]:
    """Validation masks of grouped K-fold (sklearn GroupKFold; deterministic)."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n = min(n_folds, len(np.unique(groups)))
    if n < 2:
        raise DissolutionDataError(f"cross-validation needs >= 2 (glass, pH) groups, got {n}")
    out = []
    for _, va in GroupKFold(n_splits=n).split(np.zeros(len(groups)), groups=groups):
        m = np.zeros(len(groups), bool)
        m[va] = True
        out.append(m)
    return out


def select_degree(frame: pd.DataFrame, spec: ModelSpec, max_degree: int, n_folds: int,
                  alphas: Sequence[float] | None) -> tuple[int, pd.DataFrame]:
    """Degree (and, for ridge/mixed specs, penalties) with the lowest mean validation RRMSE (in
    the model's target space) under grouped K-fold inside ``frame`` only; returns the degree
    with the train/validation curve (Figs. 5-1, 5-4, 5-6). For ridge/mixed the curve has the
    best penalties per degree, and ``curve.attrs`` holds the chosen ``alpha`` (and
    ``alpha_glass``). ``alphas`` None means ``DEFAULT_RIDGE_ALPHAS``."""
    folds = grouped_folds(frame["group"].to_numpy(), n_folds)
    X = frame[list(spec.features)].to_numpy(dtype=float)
    y = frame[spec.target].to_numpy(dtype=float)
    alphas = list(alphas or DEFAULT_RIDGE_ALPHAS)
    if spec.estimator == "ridge":
        grid = [(a, 0.0) for a in alphas]
    elif spec.estimator == "mixed":
        grid = [(a, g) for a in alphas for g in DEFAULT_GLASS_ALPHAS]
    else:
        grid = [(0.0, 0.0)]
    rows = []
    with one_thread():
        for deg in range(1, max_degree + 1):
            tr_e, va_e = np.zeros((len(folds), len(grid))), np.zeros((len(folds), len(grid)))
            for i, va in enumerate(folds):
                if spec.estimator == "mixed":
                    m = MixedRateModel(spec, deg).setup(frame[~va])
                    (A_tr, G_tr), (A_va, G_va) = m.designs(frame[~va]), m.designs(frame[va])
                    M_tr, M_va = np.hstack([A_tr, G_tr]), np.hstack([A_va, G_va])
                    pens = [mixed_penalty(A_tr.shape[1], G_tr.shape[1], a, g) for a, g in grid]
                    for j, w in enumerate(penalised_solves(M_tr, y[~va], pens)):
                        tr_e[i, j], va_e[i, j] = rrmse(M_tr @ w, y[~va]), rrmse(M_va @ w, y[va])
                elif spec.estimator == "ridge":
                    m = PolynomialRateModel(spec, deg)
                    m.x_min, m.x_max = X[~va].min(axis=0), X[~va].max(axis=0)
                    m.powers = powers(X.shape[1], deg)
                    A_tr, A_va = m._design(X[~va]), m._design(X[va])
                    for j, w in enumerate(ridge_solve(A_tr, y[~va], [a for a, _ in grid])):
                        tr_e[i, j], va_e[i, j] = rrmse(A_tr @ w, y[~va]), rrmse(A_va @ w, y[va])
                else:
                    m = PolynomialRateModel(spec, deg)
                    m.fit_arrays(X[~va], y[~va])
                    tr_e[i, 0] = rrmse(m.predict_arrays(X[~va]), y[~va])
                    va_e[i, 0] = rrmse(m.predict_arrays(X[va]), y[va])
            j = int(np.argmin(va_e.mean(axis=0)))
            rows.append({"model": spec.name, "degree": deg, "alpha": grid[j][0],
                         "alpha_glass": grid[j][1], "train_rrmse": float(tr_e[:, j].mean()),
                         "validation_rrmse": float(va_e[:, j].mean())})
    curve = pd.DataFrame(rows)
    i = curve["validation_rrmse"].idxmin()
    curve.attrs["alpha"] = float(curve.loc[i, "alpha"])
    curve.attrs["alpha_glass"] = float(curve.loc[i, "alpha_glass"])
    return int(curve.loc[i, "degree"]), curve


def _fitted(spec: ModelSpec, degree: int, curve: pd.DataFrame, frame: pd.DataFrame, row=None):
    """The model of ``spec`` at ``degree`` with the curve's penalties (best overall or
    ``row``'s)."""
    src = curve.attrs if row is None else row
    if spec.estimator == "mixed":
        return MixedRateModel(spec, degree, alpha=float(src["alpha"]),
                              alpha_glass=float(src["alpha_glass"])).fit(frame)
    return PolynomialRateModel(spec, degree, alpha=float(src["alpha"])).fit(frame)


def fit_with_cv(frame: pd.DataFrame, spec: ModelSpec, max_degree: int, cv_folds: int,
                alphas: Sequence[float] | None, cache: dict | None = None):
    """Fit ``spec`` on ``frame`` with its hyper-parameters chosen on ``frame`` alone; returns
    (model, selection curve). ``cache`` (one dict per training frame) lets an ensemble reuse
    members fitted on the same frame."""
    key = ("cv", spec.name)
    if cache is not None and key in cache:
        return cache[key]
    if spec.estimator == "ensemble":
        fits = [fit_with_cv(frame, m, max_degree, cv_folds, alphas, cache) for m in spec.members]
        curve = pd.concat([c.assign(member=m.spec.name, model=spec.name) for m, c in fits],
                          ignore_index=True)
        out = EnsembleRateModel(spec, [m for m, _ in fits]), curve
    elif spec.estimator == "gp":
        model = AnovaGPRateModel(spec).fit(frame)
        curve = pd.DataFrame([{"model": spec.name, "degree": 0, "alpha": np.nan,
                               "train_rrmse": rrmse(model.predict(frame), frame["log10_rate"]),
                               "validation_rrmse": np.nan}])
        out = model, curve
    else:
        deg, curve = select_degree(frame, spec, max_degree, cv_folds, alphas)
        out = _fitted(spec, deg, curve, frame), curve
    if cache is not None:
        cache[key] = out
    return out


def fit_fixed_degree(frame: pd.DataFrame, spec: ModelSpec, degree: int, cv_folds: int,
                     alphas: Sequence[float] | None, cache: dict | None = None):
    """Fixed degree; ridge/mixed specs still pick their penalties by grouped CV inside
    ``frame``; a GP has no degree and is fitted as usual; an ensemble fixes its members'
    degrees."""
    key = (degree, spec.name)
    if cache is not None and key in cache:
        return cache[key]
    if spec.estimator == "ensemble":
        model = EnsembleRateModel(spec, [fit_fixed_degree(frame, m, degree, cv_folds, alphas, cache)
                                         for m in spec.members])
    elif spec.estimator == "gp":
        model = AnovaGPRateModel(spec).fit(frame)
    elif spec.estimator in ("ridge", "mixed"):
        _, curve = select_degree(frame, spec, degree, cv_folds, alphas)
        model = _fitted(spec, degree, curve, frame, curve[curve["degree"] == degree].iloc[0])
    else:
        model = PolynomialRateModel(spec, degree).fit(frame)
    if cache is not None:
        cache[key] = model
    return model
