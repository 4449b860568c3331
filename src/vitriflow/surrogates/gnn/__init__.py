"""Graph-network surrogate of per-structure MD properties (torch-geometric; config key ``gnn``).

Modules: ``checks`` (config checks at workflow start, torch-free), ``graphs`` (periodic graphs),
``model`` (:class:`GNNRegressor`), ``pipeline`` (dataset, grouped cross-validation, outputs),
``report`` (section 85). The names below are imported on first use, so ``checks`` can be
imported while Snakemake parses the workflow without loading torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"GNNRegressor": "model", "GlassGNN": "model", "TARGET_UNITS": "pipeline",
            "load_dataset": "pipeline", "metrics_table": "pipeline",
            "train_and_evaluate": "pipeline", "write_outputs": "pipeline",
            "write_skipped_outputs": "pipeline"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
