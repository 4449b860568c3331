"""Held-out-composition evaluation: splits that never leak a glass, curve and peak metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from vitriflow.surrogates.pcf.fingerprint import split_pair


def grouped_split(groups, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with every composition (group) entirely on one side."""
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if not 0 < test_fraction < 1:
        raise ValueError(f"pcf.test_fraction: {test_fraction}; expected 0 < value < 1")
    if n_groups < 2:
        raise ValueError(f"pcf: {n_groups} composition(s); a held-out split needs at least 2")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train), np.sort(test)


def first_peak(r: np.ndarray, g: np.ndarray, rel_height: float = 0.5) -> tuple[float, float]:
    """Position and height of the first peak of g(r).

    The first local maximum reaching ``rel_height`` x the curve's maximum (so noise wiggles on the
    rising edge do not count), refined by a parabola through it and its two neighbours.
    """
    g = np.asarray(g, dtype=float)
    if len(g) < 3 or not np.isfinite(g).all() or g.max() <= 0:
        return float("nan"), float("nan")
    thresh = rel_height * g.max()
    i = int(np.argmax(g >= thresh))
    while i + 1 < len(g) and g[i + 1] >= g[i]:
        i += 1
    if i == 0 or i == len(g) - 1:
        return float(r[i]), float(g[i])
    y0, y1, y2 = g[i - 1], g[i], g[i + 1]
    denom = y0 - 2 * y1 + y2
    delta = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
    delta = float(np.clip(delta, -0.5, 0.5))
    dr = r[i + 1] - r[i]
    return float(r[i] + delta * dr), float(y1 - 0.25 * (y0 - y2) * delta)


def _r2(t: np.ndarray, p: np.ndarray) -> float:
    ss_tot = float(((t - t.mean()) ** 2).sum())
    return 1.0 - float(((t - p) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")


def is_cation_oxygen(pair: str) -> bool:
    a, b = split_pair(pair)
    return (a == "O") != (b == "O")


def smooth(r: np.ndarray, y: np.ndarray, sigma_A: float) -> np.ndarray:
    """Gaussian smoothing along r (width in Angstrom); identity for sigma 0."""
    if not sigma_A:
        return np.asarray(y, dtype=float)
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(np.asarray(y, dtype=float), sigma_A / float(r[1] - r[0]), axis=-1,
                             mode="nearest")


def curve_metrics(r: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, pairs, y_std=None,
                  peak_smoothing_A: float = 0.05, n_replicas=None) -> pd.DataFrame:
    """Per-pair and overall (``pair == 'all'``) metrics of predicted curves.

    ``mse`` and ``r2`` pool every point of every curve of the pair; ``peak_dr_*`` is the absolute
    first-peak position error (Angstrom), ``peak_dh_*`` the relative first-peak height error (%),
    both found on copies of the simulated and predicted curves smoothed alike by a Gaussian of
    ``peak_smoothing_A`` (histogram noise of small MD cells otherwise moves the maximum).
    ``replica_rms_std`` is the RMS replica spread of the targets; ``noise_floor_mse`` the
    expected squared error of the replica mean itself (spread^2 / (n_replicas - 1), NaN for one
    replica): no model can score a lower ``mse`` against these noisy targets on average.
    """
    pairs = np.asarray(pairs)
    peaks_t = np.array([first_peak(r, g) for g in smooth(r, y_true, peak_smoothing_A)])
    peaks_p = np.array([first_peak(r, g) for g in smooth(r, y_pred, peak_smoothing_A)])
    dr = np.abs(peaks_p[:, 0] - peaks_t[:, 0])
    if y_std is not None and n_replicas is not None:
        n = np.asarray(n_replicas, dtype=float)[:, None]
        var_mean = np.where(n > 1, np.asarray(y_std) ** 2 / np.maximum(n - 1, 1), np.nan)
    else:
        var_mean = np.full(y_true.shape, np.nan)
    dh = 100 * np.abs(peaks_p[:, 1] - peaks_t[:, 1]) / peaks_t[:, 1]
    rows = []
    for name in [*sorted(set(pairs)), "all"]:
        m = np.ones(len(pairs), bool) if name == "all" else pairs == name
        t, p = y_true[m], y_pred[m]
        rows.append({
            "pair": name, "n_curves": int(m.sum()),
            "cation_O": bool(name != "all" and is_cation_oxygen(name)),
            "mse": float(((t - p) ** 2).mean()), "r2": _r2(t.ravel(), p.ravel()),
            "peak_dr_mean_A": float(np.nanmean(dr[m])), "peak_dr_max_A": float(np.nanmax(dr[m])),
            "peak_dh_mean_pct": float(np.nanmean(dh[m])),
            "peak_dh_max_pct": float(np.nanmax(dh[m])),
            "replica_rms_std": (float(np.sqrt((y_std[m] ** 2).mean())) if y_std is not None
                                else float("nan")),
            "noise_floor_mse": float(np.mean(var_mean[m])),
        })
    return pd.DataFrame(rows)


def latent_r2(z_true: np.ndarray, z_pred: np.ndarray) -> float:
    """R^2 of predicted latent codes, averaged over the latent dimensions (the paper's 0.92)."""
    from sklearn.metrics import r2_score

    return float(r2_score(z_true, z_pred, multioutput="uniform_average"))
