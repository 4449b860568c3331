"""Pair-correlation-function surrogate (Ayush et al.): composition + pair -> g(r).

Modules: ``checks`` (config checks at workflow start, torch-free), ``fingerprint`` (the feature
vector, validated), ``data`` (training set from the DAG's RDF tables, replicas averaged),
``models`` (autoencoder / PCA / direct + random forest, scikit-learn shaped), ``evaluate``
(grouped splits, curve and first-peak metrics), ``pipeline`` (tuning, training, outputs,
:class:`PCFPredictor`), ``report`` (section 80), ``synthetic`` (peaked test curves; never used by
the workflow). The names below are imported on first use, so ``checks`` loads no torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PCFDataset": "data", "build_dataset": "data", "curve_metrics": "evaluate",
    "first_peak": "evaluate", "grouped_split": "evaluate", "latent_r2": "evaluate",
    "PCFFingerprint": "fingerprint", "element_fractions": "fingerprint", "pair_name": "fingerprint",
    "ConvAutoencoder": "models", "PCFSurrogate": "models", "PCFPredictor": "pipeline",
    "train_and_evaluate": "pipeline", "tune_forest": "pipeline", "write_outputs": "pipeline",
    "write_skipped_outputs": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
