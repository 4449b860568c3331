"""Applicability domain shared by the composition surrogates (melt, PCF): how far a composition
lies from the nearest composition a model was trained on, and where extrapolation begins.

``melt.estimator`` re-exports these names: the viscosity CLI, comparison and report import them
from there."""

from __future__ import annotations

import numpy as np

# beyond this distance to the nearest training composition a prediction is an extrapolation: on
# i-Melt's test split (full preset, seed 0) density, refractive-index, Tg, liquidus and CTE errors
# there are 1.5-7x those of the other rows; viscosity's are not larger (docs/viscosity.md,
# "Applicability domain"). The PCF surrogate uses the same threshold (docs/pcf.md).
DOMAIN_WARN_MOL = 5.0
NEAREST_SUFFIX = "_nearest_mol"  # melt predict(): <property>_nearest_mol, see nearest_training_mol


def nearest_training_mol(x: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """mol% of composition that must change to reach the nearest training composition (half the
    L1 distance between fraction vectors x (n, k) and the rows of ``domain`` (m, k))."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(domain).query(np.asarray(x, dtype=float), k=1, p=1)
    # rounded: many melts lie exactly one 5 mol% grid step from a neighbour, and the float32
    # compositions must not decide on which side of DOMAIN_WARN_MOL they fall
    return np.round(50.0 * dist, 4)
