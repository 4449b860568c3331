"""Composition clusters and cross-validation folds that never split one (torch-free).

Many melts of the i-Melt database sit within a mol% or two of another one (series measured
twice, or a composition step of 1 mol%). Folds drawn melt by melt put such near-duplicates on
both sides, and cross-validation then measures interpolation between twins rather than the
error on a new glass. Here melts are linked when they lie within ``radius_mol`` of each other
(the mol% of composition that must change to turn one into the other: half the L1 distance of
the mole-fraction vectors, as ``nearest_training_mol``), clusters are the connected components
of those links (single linkage), and folds take whole clusters: every held-out melt is then
farther than ``radius_mol`` from every melt its fold model was trained on, as a glass 2-12 mol%
from the database is.

Where the data are dense (the liquidus table's fine composition grids), single linkage chains
most melts into one cluster. A cluster larger than ``max_size`` is therefore cut into balls of
radius ``radius_mol`` (greedy cover, in composition order): inside such a cluster the
separation is not guaranteed, everywhere else it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitriflow.surrogates.viscosity.features import OXIDES


def _balls(x: np.ndarray, r: float) -> np.ndarray:
    """Greedy cover of the rows of ``x`` by L1 balls of radius ``r`` (label per row)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(x)
    labels = np.full(len(x), -1, dtype=np.int64)
    for i in range(len(x)):
        if labels[i] < 0:
            near = np.asarray(tree.query_ball_point(x[i], r=r, p=1), dtype=np.int64)
            labels[near[labels[near] < 0]] = i
    return labels


def composition_clusters(x: np.ndarray, radius_mol: float = 2.0,
                         max_size: int | None = None) -> np.ndarray:
    """Cluster label (0..k-1, ordered by first appearance) of each row of mole fractions
    ``x`` (n, 6): rows within ``radius_mol`` of each other, directly or through a chain of
    such rows, share a label; a cluster of more than ``max_size`` rows is cut into balls."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # half L1 <= radius/100  <=>  L1 <= 2 radius / 100; a hair of slack for float32 inputs
    r = 2.0 * radius_mol / 100.0 + 1e-9
    pairs = cKDTree(x).query_pairs(r=r, p=1, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    if max_size is not None:
        labels = labels.astype(np.int64) * n
        for big in np.flatnonzero(np.bincount(labels // n) > max_size):
            rows = np.flatnonzero(labels // n == big)
            labels[rows] += _balls(x[rows], r) % n + 1
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")  # by first appearance
    return rank[inverse.reshape(-1)].astype(np.int64)


def cluster_folds(labels: np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold (0..n_folds-1) of each row, whole clusters per fold, folds balanced by row count:
    clusters in decreasing size (ties in a seeded random order) each go to the fold with the
    fewest rows so far. Deterministic for a given seed."""
    labels = np.asarray(labels)
    if n_folds < 2:
        raise ValueError(f"n_folds: expected at least 2, got {n_folds}")
    ids, sizes = np.unique(labels, return_counts=True)
    if len(ids) < n_folds:
        raise ValueError(f"{len(ids)} composition clusters cannot fill {n_folds} folds")
    tie = np.random.default_rng(seed).permutation(len(ids))
    order = np.lexsort((tie, -sizes))
    load = np.zeros(n_folds, dtype=np.int64)
    fold_of = {}
    for i in order:
        f = int(np.argmin(load))
        fold_of[ids[i]] = f
        load[f] += sizes[i]
    return np.array([fold_of[v] for v in labels], dtype=np.int64)


def melt_folds(table: pd.DataFrame, n_folds: int, radius_mol: float = 2.0,
               seed: int = 0) -> np.ndarray:
    """Fold of every row of a tidy table: melts (unique compositions, over all properties, so
    that a melt's viscosity and density rows stay together) clustered by ``radius_mol`` (no
    cluster larger than one fold's share) and the clusters dealt into ``n_folds`` folds
    balanced by melt count."""
    x = table.loc[:, list(OXIDES)].to_numpy(dtype=float)
    uniq, inverse = np.unique(np.round(x, 9), axis=0, return_inverse=True)
    cap = int(np.ceil(len(uniq) / n_folds))
    melt_fold = cluster_folds(composition_clusters(uniq, radius_mol, cap), n_folds, seed)
    return melt_fold[inverse.reshape(-1)]


def inside_range(rows: pd.DataFrame, training: pd.DataFrame, tol_mol: float = 1e-6) -> np.ndarray:
    """For every row, whether its composition lies within the minimum-maximum range of every
    oxide over the ``training`` melts (oxide columns in mol%)."""
    cols = list(OXIDES)
    lo = training.loc[:, cols].to_numpy(float).min(axis=0) - tol_mol
    hi = training.loc[:, cols].to_numpy(float).max(axis=0) + tol_mol
    x = rows.loc[:, cols].to_numpy(float)
    return np.all((x >= lo) & (x <= hi), axis=1)


def out_of_fold(make, table: pd.DataFrame, n_folds: int = 5, radius_mol: float = 2.0,
                seed: int = 0, checkpoint_dir=None, log=None) -> pd.DataFrame:
    """Composition-grouped out-of-fold predictions over the train + valid rows of ``table``.

    Fold k's model, ``make(k)`` (an unfitted estimator), is fitted on the rows of the other
    folds with their own split labels (train rows train, valid rows early-stop) and predicts
    fold k's rows; the result is ``predict_table``'s long format with a ``fold`` column,
    ``nearest_mol`` measured to the melts that fold's model was trained on, and
    ``inside_range``: whether the melt lies within that model's training range of every oxide
    (an extrapolation beyond it, such as pure silica held out from 97.5 % SiO2 glasses, is not
    what a new glass inside the database's range asks of the model)."""
    from pathlib import Path

    dev = table[table["split"].isin(("train", "valid"))].reset_index(drop=True)
    fold = melt_folds(dev, n_folds, radius_mol, seed)
    frames = []
    for k in range(n_folds):
        est = make(k)
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"fold{k}"
        est.fit(dev[fold != k], checkpoint_dir=ckpt)
        pred = est.predict_table(dev[fold == k])
        frames.append(pred.assign(fold=k, inside_range=inside_range(pred, dev[fold != k])))
        if log is not None:
            log.info("out-of-fold predictions: fold %d/%d done (%d rows held out)", k + 1,
                     n_folds, int((fold == k).sum()))
    return pd.concat(frames, ignore_index=True)
