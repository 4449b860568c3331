"""Graph-network surrogate of per-structure MD properties (torch-geometric; config key ``gnn``)."""

from vitriflow.surrogates.gnn.model import GlassGNN, GNNRegressor
from vitriflow.surrogates.gnn.pipeline import (
    TARGET_UNITS,
    load_dataset,
    metrics_table,
    train_and_evaluate,
    write_outputs,
    write_skipped_outputs,
)

__all__ = ["GNNRegressor", "GlassGNN", "TARGET_UNITS", "load_dataset", "metrics_table",
           "train_and_evaluate", "write_outputs", "write_skipped_outputs"]
