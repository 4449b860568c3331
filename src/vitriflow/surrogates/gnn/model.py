"""Crystal-graph network (CGCNN convolutions, torch-geometric) for per-atom properties of MD cells.

``GNNRegressor`` is scikit-learn shaped: ``fit(structures, y)``, ``predict(structures)`` ->
(mean, spread over the ensemble), ``save`` / ``load``. Targets are intensive (per atom, or a
density), so the readout averages the atoms' states. Each member trains from its own seed on
every structure it is given, for a fixed number of epochs with a cosine learning rate: with tens
of structures per composition family there is no validation set to stop on, and a fixed schedule
keeps CPU runs bit-for-bit repeatable. Each member is written to a checkpoint directory the
moment it is trained (``fit(..., checkpoint_dir=...)``), keyed by a digest of the settings, the
structures and the targets, so a killed fit resumes with the members it had and ends with the
model an uninterrupted fit gives.

The network learns only what the composition does not explain: the target is first fitted by a
per-element reference (least squares on the element fractions, no intercept: an ideal-mixing
baseline, as atomistic networks subtract per-species reference energies), and the graph network
is trained on the residual. Across a composition family the ideal-mixing part is most of an
energy per atom (eV), while the structure moves it by meV to tens of meV.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitriflow.io import load_checkpoint, save_checkpoint, save_torch
from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.gnn.graphs import (
    MIN_CUTOFF_A,
    element_fractions,
    structure_problem,
    to_graph,
)

log = logging.getLogger("vitriflow.surrogates.gnn")
FORMAT = "vitriflow-gnn/1"


class GlassGNN(nn.Module):
    """Species embedding -> ``layers`` CGConv (gated, distance-aware) -> mean over atoms -> MLP."""

    def __init__(self, n_species: int, n_rbf: int, hidden: int = 16, layers: int = 3):
        from torch_geometric.nn import CGConv

        super().__init__()
        self.embed = nn.Embedding(n_species, hidden)
        # CGConv: h_i + sum_j sigmoid(W_f [h_i, h_j, e_ij]) * softplus(W_s [h_i, h_j, e_ij]);
        # the sum over ~30 neighbours is renormalised after each layer
        self.convs = nn.ModuleList(CGConv(hidden, dim=n_rbf, aggr="add") for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, data) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        h = self.embed(data.z)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(conv(h, data.edge_index, data.edge_attr))
        return self.head(global_mean_pool(h, data.batch))


class GNNRegressor:
    """Bagged-by-seed ensemble of GlassGNN on one per-structure target (see module docstring)."""

    def __init__(self, cutoff_A: float = 3.5, n_rbf: int = 16, hidden: int = 16, layers: int = 3,
                 epochs: int = 200, lr: float = 3e-3, weight_decay: float = 1e-4,
                 batch_size: int = 4, n_models: int = 2, seed: int = 0, device: str = "cpu"):
        self.cutoff_A = cutoff_A
        self.n_rbf = n_rbf
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.n_models = n_models
        self.seed = seed
        self.device = device

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k)
                for k in ("cutoff_A", "n_rbf", "hidden", "layers", "epochs", "lr", "weight_decay",
                          "batch_size", "n_models", "seed", "device")}

    def _check(self) -> None:
        if not self.cutoff_A >= MIN_CUTOFF_A:
            raise ValueError(f"gnn.cutoff_A: expected >= {MIN_CUTOFF_A} Å, got {self.cutoff_A!r}")
        for key in ("n_rbf", "hidden", "layers", "epochs", "batch_size", "n_models"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"gnn.{key}: expected a positive integer, got "
                                 f"{getattr(self, key)!r}")

    def _graphs(self, structures, y=None) -> list:
        return [to_graph(a, self.species_, self.cutoff_A, self.n_rbf, None if y is None else y[k])
                for k, a in enumerate(structures)]

    def _fractions(self, structures) -> np.ndarray:
        """(n, n_species) element fractions, the columns in ``species_`` order."""
        out = np.zeros((len(structures), len(self.species_)))
        for k, a in enumerate(structures):
            for el, v in element_fractions(a).items():
                out[k, self.species_.index(el)] = v
        return out

    def _digest(self, structures, y: np.ndarray) -> str:
        """Fingerprint of what a member depends on: settings, structures and targets."""
        h = hashlib.sha256(json.dumps([FORMAT, self.get_params()], sort_keys=True).encode())
        for a in structures:
            for arr in (a.numbers, a.positions, a.cell[:]):
                h.update(np.ascontiguousarray(arr).tobytes())
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
        return h.hexdigest()

    def fit(self, structures, y, checkpoint_dir: str | os.PathLike | None = None) -> GNNRegressor:
        """Train ``n_models`` members; with ``checkpoint_dir`` each is saved there when trained and
        members already there (same digest) are reused instead of retrained."""
        self._check()
        y = np.asarray(y, dtype=np.float64)
        if len(structures) != len(y) or len(y) < 2:
            raise ValueError(f"gnn: {len(structures)} structures and {len(y)} targets; expected "
                             "the same number, at least 2")
        if not np.isfinite(y).all():
            raise ValueError("gnn: targets contain NaN or infinite values")
        self.species_ = sorted({s for a in structures for s in a.get_chemical_symbols()})
        fractions = self._fractions(structures)
        self.atom_ref_ = np.linalg.lstsq(fractions, y, rcond=None)[0]
        resid = y - fractions @ self.atom_ref_
        self.y_mean_, self.y_std_ = float(resid.mean()), float(resid.std()) or 1.0
        graphs = self._graphs(structures, (resid - self.y_mean_) / self.y_std_)
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
        digest = self._digest(structures, y) if ckpt is not None else ""
        self.members_, self.history_, self.resumed_members_ = [], [], 0
        t0 = time.perf_counter()
        for k in range(int(self.n_models)):
            where = None if ckpt is None else ckpt / f"member{k}.pt"
            done = load_checkpoint(where, f"{digest}:{k}")
            if done is None:
                done = self._train_member(k, graphs)
                if where is not None:
                    save_checkpoint(where, f"{digest}:{k}", done)
            else:
                self.resumed_members_ += 1
            self.members_.append(done["state"])
            self.history_.append(done["history"])
        if self.resumed_members_:
            log.info("gnn: resumed %d of %d members from %s", self.resumed_members_, self.n_models,
                     ckpt)
        self.fit_seconds_ = time.perf_counter() - t0
        log.info("gnn: %d members on %d structures (%s, %s) in %.1f s, final train RMSE %.3g "
                 "(target units)",
                 len(self.members_), len(graphs), self.species_, self.device, self.fit_seconds_,
                 np.sqrt(np.mean([h["train_mse_scaled"][-1] for h in self.history_])) * self.y_std_)
        return self

    def _train_member(self, k: int, graphs: list) -> dict[str, Any]:
        """One member from seed ``seed + k``: its CPU state dict and loss history."""
        from torch_geometric.loader import DataLoader

        dev = torch.device(self.device)
        torch.manual_seed(self.seed + k)
        net = GlassGNN(len(self.species_), self.n_rbf, self.hidden, self.layers).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(self.epochs),
                                                           eta_min=self.lr / 100)
        loader = DataLoader(graphs, batch_size=int(self.batch_size), shuffle=True,
                            generator=torch.Generator().manual_seed(self.seed + k))
        losses = []
        for _ in range(int(self.epochs)):
            net.train()
            total = 0.0
            for batch in loader:
                batch = batch.to(dev)
                opt.zero_grad()
                loss = nn.functional.mse_loss(net(batch), batch.y)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * batch.num_graphs
            sched.step()
            losses.append(total / len(graphs))
        state = {name: t.detach().cpu().clone() for name, t in net.state_dict().items()}
        return {"state": state, "history": {"member": k, "train_mse_scaled": losses}}

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise RuntimeError("GNNRegressor is not fitted: call fit() or load() first")

    def problems(self, structures) -> list[str]:
        """Why each structure cannot be predicted ("" when it can): an unusable cell, or an
        element the model was not trained on, whose embedding is untrained and whose
        ideal-mixing reference is unknown, so any number predicted for it would be meaningless.
        Callers screen with this; ``predict`` raises on such a structure."""
        self._check_fitted()
        return [structure_problem(a, self.species_) for a in structures]

    def predict(self, structures) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sigma) of the target for each structure: sigma is the spread over members,
        recalibrated when ``calibration_`` holds a noise model fitted on held-out residuals
        (the gnn_train rule fits it on the out-of-fold predictions). Raises ValueError naming
        the first structure that ``problems`` refuses."""
        from torch_geometric.loader import DataLoader

        self._check_fitted()
        dev = torch.device(self.device)
        loader = DataLoader(self._graphs(structures), batch_size=64, shuffle=False)
        preds = []
        for state in self.members_:
            net = GlassGNN(len(self.species_), self.n_rbf, self.hidden, self.layers)
            net.load_state_dict(state)
            net.to(dev).eval()
            with torch.no_grad():
                preds.append(torch.cat([net(b.to(dev)) for b in loader]).cpu().numpy().ravel())
        p = (np.vstack(preds) * self.y_std_ + self.y_mean_
             + self._fractions(structures) @ self.atom_ref_)
        return p.mean(axis=0), cal.predictive_std(p.std(axis=0),
                                                  getattr(self, "calibration_", None))

    def save(self, path: str | os.PathLike, **meta: Any) -> None:
        blob = {"format": FORMAT, "params": self.get_params(), "species": self.species_,
                "atom_ref": self.atom_ref_.tolist(), "y_mean": self.y_mean_, "y_std": self.y_std_,
                "members": self.members_,
                "calibration": getattr(self, "calibration_", None), "history": self.history_,
                "meta": meta}
        save_torch(blob, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> GNNRegressor:
        """A saved model, predicting on ``device`` (whatever it was trained on); ValueError
        naming the file when it is missing, truncated or not a GNN model."""
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"{path}: file not found (written by the gnn_train rule)") from None
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            raise ValueError(f"{path}: not a readable vitriflow GNN model ({type(exc).__name__}: "
                             f"{first})") from None
        if isinstance(blob, dict) and "skipped" in blob:
            raise ValueError(f"{path}: no model - the gnn stage was skipped ({blob['skipped']})")
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a vitriflow GNN surrogate (expected format {FORMAT})")
        try:
            est = cls(**{**blob["params"], "device": device})
            est.species_ = list(blob["species"])
            est.atom_ref_ = np.asarray(blob["atom_ref"], dtype=np.float64)
            est.y_mean_, est.y_std_ = float(blob["y_mean"]), float(blob["y_std"])
            est.members_, est.history_ = blob["members"], blob["history"]
            for state in est.members_:  # every network's tensors fit its architecture
                GlassGNN(len(est.species_), est.n_rbf, est.hidden, est.layers).load_state_dict(
                    state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            why = (str(exc).strip().splitlines() or [""])[0][:100]
            raise ValueError(f"{path}: damaged vitriflow GNN model "
                             f"({type(exc).__name__}: {why})") from None
        est.calibration_ = blob.get("calibration")
        est.meta_ = blob.get("meta", {})
        return est

