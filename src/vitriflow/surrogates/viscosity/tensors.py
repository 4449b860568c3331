"""Tidy property table -> tensors grouped by unique composition, ready for training.

The network is evaluated once per unique composition and its parameters are gathered onto the
measurement rows (a viscosity series of 10 temperatures costs one forward pass, not ten).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from vitriflow.surrogates.viscosity.data import PROPERTIES
from vitriflow.surrogates.viscosity.features import OXIDES, descriptors


@dataclass
class TaskRows:
    comp: torch.Tensor  # index into the unique-composition table
    y: torch.Tensor  # (n, 1)
    T: torch.Tensor | None = None
    lbd: torch.Tensor | None = None
    row_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to(self, device):
        return TaskRows(
            self.comp.to(device),
            self.y.to(device),
            None if self.T is None else self.T.to(device),
            None if self.lbd is None else self.lbd.to(device),
            self.row_id,
        )


@dataclass
class MeltData:
    x: torch.Tensor  # (N, 6) unique mole-fraction vectors
    feats: np.ndarray  # (N, 39) unscaled descriptors
    tasks: dict[str, dict[str, TaskRows]]  # split -> property -> rows
    v_prior: torch.Tensor | None = None  # (N, 1) prior molar volume of each composition


def _col(df: pd.DataFrame, name: str, idx) -> torch.Tensor:
    return torch.tensor(df.loc[idx, name].to_numpy(dtype=np.float32).reshape(-1, 1))


def build(table: pd.DataFrame, splits=("train", "valid", "test")) -> MeltData:
    """Group a validated tidy table by composition. Unknown properties are ignored."""
    table = table.reset_index(drop=True)
    comp = table.loc[:, list(OXIDES)].to_numpy(dtype=float)
    uniq, inverse = np.unique(np.round(comp, 9), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    tasks: dict[str, dict[str, TaskRows]] = {}
    for split in splits:
        tasks[split] = {}
        for prop, spec in PROPERTIES.items():
            idx = np.flatnonzero(
                (table["split"] == split).to_numpy() & (table["property"] == prop).to_numpy()
            )
            if idx.size == 0:
                continue
            rows = TaskRows(
                torch.tensor(inverse[idx], dtype=torch.long),
                _col(table, "value", idx),
                row_id=table.loc[idx, "row_id"].to_numpy() if "row_id" in table else idx,
            )
            if spec.get("needs") == "T_K":
                rows.T = _col(table, "T_K", idx)
            if spec.get("needs") == "wavelength_um":
                rows.lbd = _col(table, "wavelength_um", idx)
            tasks[split][prop] = rows
    return MeltData(torch.tensor(uniq, dtype=torch.float32), descriptors(uniq), tasks)


def merge_splits(d: MeltData, sources=("train", "valid"), into: str = "train") -> MeltData:
    """The same data with the rows of ``sources`` pooled into one split ``into`` (per property);
    the other splits are dropped. Used to refit on train + valid once early stopping has fixed
    the number of epochs."""
    pooled: dict[str, TaskRows] = {}
    for prop in PROPERTIES:
        parts = [d.tasks[s][prop] for s in sources if prop in d.tasks.get(s, {})]
        if not parts:
            continue
        pooled[prop] = TaskRows(
            *(_cat(parts, name) for name in ("comp", "y", "T", "lbd")),
            np.concatenate([r.row_id for r in parts]),
        )
    return MeltData(d.x, d.feats, {into: pooled}, d.v_prior)


def _cat(parts: list[TaskRows], name: str) -> torch.Tensor | None:
    return None if getattr(parts[0], name) is None else torch.cat([getattr(r, name) for r in parts])
