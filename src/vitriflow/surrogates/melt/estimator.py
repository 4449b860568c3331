"""scikit-learn-shaped estimator: a bagged ensemble of physics-guided multitask networks.

``MeltSurrogate().fit(table)`` trains on the rows of a tidy property table (see
``vitriflow.ingest.imelt_data``) whose ``split`` is ``train``, early-stopping on ``valid``.
Each ensemble member sees a bootstrap resample of the training *compositions* (all
measurements of a melt stay together) and its own seed; predictions are the ensemble mean and
the spread (standard deviation over members), recalibrated on the validation rows into a
predictive standard deviation (``vitriflow.surrogates.calibration``), is the uncertainty.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import nn

from vitriflow.io import load_checkpoint, save_checkpoint
from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.domain import DOMAIN_WARN_MOL, NEAREST_SUFFIX, nearest_training_mol  # noqa: F401
from vitriflow.surrogates.melt import data as mdata
from vitriflow.surrogates.melt import equations as eq
from vitriflow.surrogates.melt.data import target_name
from vitriflow.surrogates.melt.features import OXIDES, descriptors, oxide_matrix
from vitriflow.surrogates.melt.network import (
    REFRACTIVE_INDEX_LAWS,
    MeltNet,
    heat_capacity,
    refractive_index,
    viscosity,
)

log = logging.getLogger("vitriflow.surrogates.melt")
FORMAT = "vitriflow-melt-surrogate/1"
SCALAR_OUTPUTS = ("tg", "sconf_tg", "fragility", "density", "liquidus", "elastic_modulus", "cte",
                  "abbe_number")
PARAMETER_OUTPUTS = ("ae", "a_am", "a_vft", "a_fv", "t0_vft", "t0_fv", "c_fv", "cp_a", "cp_b",
                     "molar_volume")


# predict() column -> calibrated target
_COLUMN_TARGET = {**{p: p for p in mdata.PROPERTIES if p != "viscosity"},
                  **{f"viscosity_{e}": f"viscosity:{e}" for e in eq.EQUATIONS}}


def _task_prediction(p, prop: str, rows: mdata.TaskRows, sel=None) -> dict[str, torch.Tensor]:
    """Predictions for one property's rows: {'': y} or {equation: y} for viscosity."""
    T = rows.T if sel is None or rows.T is None else rows.T[sel]
    lbd = rows.lbd if sel is None or rows.lbd is None else rows.lbd[sel]
    if prop == "viscosity":
        return viscosity(p, T)
    if prop == "refractive_index":
        return {"": refractive_index(p, lbd)}
    if prop == "cp_liquid":
        return {"": heat_capacity(p, T)}
    return {"": p[prop]}


def _fit_candidate(est: MeltSurrogate, k: int, d, feats, dev, set_threads: bool = True,
                   epochs: int | None = None, checkpoint: Path | None = None,
                   digest: str = "") -> dict[str, Any]:
    """One candidate network (module level so that joblib workers can run it); saved to
    ``checkpoint`` as soon as it is trained, so a killed fit loses at most the running ones."""
    if set_threads:
        torch.set_num_threads(1)
    t1 = time.perf_counter()
    res = est._fit_member(k, d, feats, dev, epochs)
    res["seconds"] = time.perf_counter() - t1
    if checkpoint is not None:
        save_checkpoint(checkpoint, digest, {"result": res})
    return res


# properties whose values come from the viscosity equations' own parameters
_VISCOSITY_GROUP = ("viscosity", "tg", "sconf_tg", "cp_liquid")
_GROUP_KEYS_FIXED = ("task_groups", "seed", "device", "n_jobs")


def _owned_columns(props) -> set[str]:
    """Output columns of ``predict`` that a group with these properties provides."""
    cols = set(props)
    if "viscosity" in props:  # every equation parameter except the density's molar volume
        cols |= {f"viscosity_{e}" for e in eq.EQUATIONS} | {"fragility"} | (
            set(PARAMETER_OUTPUTS) - {"molar_volume"})
    if "density" in props:
        cols.add("molar_volume")
    return cols


TIMING_KEYS = ("seconds", "refit_seconds")  # per-network wall times in the training history

# (option, lower bound, type) checked by MeltSurrogate._check_options, for each task group too
_NUMERIC_OPTIONS = (("n_models", 1, int), ("hidden", 1, int), ("layers", 1, int), ("dropout", 0, float),
                    ("lr", 0, float), ("weight_decay", 0, float), ("max_epochs", 1, int), ("patience", 1, int),
                    ("batch_size", 0, int), ("min_epochs", 0, int), ("n_candidates", 1, int), ("n_jobs", 1, int),
                    ("grad_clip", 0, float))


class MeltSurrogate(BaseEstimator):
    """Bagged physics-guided network for NKCMAS melt and glass properties.

    Parameters are explicit (sklearn style); ``sigmas`` overrides the per-task noise scales of
    ``vitriflow.surrogates.melt.data.DEFAULT_SIGMAS`` that weight the multitask loss.
    ``n_candidates`` > ``n_models`` trains that many members and keeps the ``n_models`` with the
    lowest validation loss (i-Melt's own selection of its 10 pretrained networks);
    ``lr_schedule="cosine"`` anneals the learning rate to lr/100 over ``max_epochs``.
    ``early_stopping_on`` is "all" (the weighted multitask validation loss) or one property
    (e.g. "viscosity"): its term alone drives early stopping and candidate selection.
    ``learn_task_weights``: the training loss weights each task by a learned precision,
    exp(-s) * MSE + s with s starting at log(sigma^2) (Kendall et al. 2018; i-Melt's log_vars);
    validation losses keep the fixed sigmas so that candidates stay comparable.
    ``n_jobs``: candidates trained in that many worker processes (one torch thread each); each
    candidate has its own seed, so the result is the same as with ``n_jobs=1``.
    ``grad_clip``: clip the network's gradient norm to this value each step (None: off); keeps
    wide nets at high learning rates out of the viscosity equations' singular regions.
    ``task_groups``: train one network per group of properties instead of one for all, each
    group a dict ``{"properties": [...], **overrides}`` of this estimator's parameters
    (e.g. a wide, viscosity-weighted net for viscosity and the properties its equations use,
    and a small one for the optical/mechanical/liquidus tasks). Groups partition the
    properties; Tg, Sconf(Tg) and Cp must share the viscosity group so that every equation
    still passes through 10^12 Pa s at the reported Tg.
    ``refit``: once early stopping on 'valid' has chosen each kept member's number of epochs,
    retrain that member from the same seed on train + valid for exactly that many epochs (the
    usual last step of a train/valid/test protocol: the validation melts become training data;
    the test split stays untouched). Doubles the training time.
    ``linear_skip``: add a linear map of the 6 mole fractions to the raw outputs beside the MLP
    (an ideal-mixing path for extrapolating towards end-member compositions).
    ``melt_weight_power`` p: a task's rows of a melt with n rows each weigh n^-p in its loss;
    0 weighs every row the same (a 30-temperature viscosity series counts 30 times a single
    point), 1 every melt, whatever its number of rows.
    ``refractive_index_law``: 'sellmeier' (n from a 3-term Sellmeier law, its coefficients
    free network outputs) or 'lorentz_lorenz' ((n^2 - 1) / (n^2 + 2) = R / V: partial molar
    refractivities over the molar volume that also gives the density, so the two properties
    are tied by construction).
    ``features``: 'descriptors' (the 6 mole fractions and the 33 descriptors i-Melt derives from
    them: NBO/T, optical basicity, pairwise ratios) or 'oxides' (the 6 mole fractions alone).
    """

    def __init__(self, n_models: int = 10, hidden: int = 256, layers: int = 3,
                 dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 1e-4,
                 max_epochs: int = 1500, patience: int = 150, batch_size: int = 512,
                 bootstrap: bool = True, seed: int = 0, device: str = "cpu",
                 sigmas: dict[str, float] | None = None, min_epochs: int = 0,
                 lr_schedule: str = "constant", n_candidates: int | None = None,
                 early_stopping_on: str = "all", learn_task_weights: bool = False, n_jobs: int = 1,
                 grad_clip: float | None = None, task_groups: list[dict] | None = None,
                 refit: bool = False, linear_skip: bool = False, melt_weight_power: float = 0.0,
                 refractive_index_law: str = "sellmeier", features: str = "descriptors"):
        self.n_models = n_models
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.bootstrap = bootstrap
        self.seed = seed
        self.device = device
        self.sigmas = sigmas
        self.min_epochs = min_epochs
        self.lr_schedule = lr_schedule
        self.n_candidates = n_candidates
        self.early_stopping_on = early_stopping_on
        self.learn_task_weights = learn_task_weights
        self.n_jobs = n_jobs
        self.grad_clip = grad_clip
        self.task_groups = task_groups
        self.refit = refit
        self.linear_skip = linear_skip
        self.melt_weight_power = melt_weight_power
        self.refractive_index_law = refractive_index_law
        self.features = features

    # ------------------------------------------------------------------ training
    def _inputs(self, feats: np.ndarray) -> np.ndarray:
        """The network's input columns of the 39 descriptors: all, or the 6 mole fractions."""
        return feats if self.features == "descriptors" else feats[:, : len(OXIDES)]

    def _sigmas(self) -> dict[str, float]:
        s = dict(mdata.DEFAULT_SIGMAS)
        for k, v in (self.sigmas or {}).items():
            if k not in s:
                raise ValueError(f"sigmas: unknown property {k!r}; expected one of {sorted(s)}")
            if not v > 0:
                raise ValueError(f"sigmas.{k}: expected a positive number, got {v!r}")
            s[k] = float(v)
        return s

    def _scale(self, feats: np.ndarray) -> torch.Tensor:
        # clipped: a few descriptors (NBO/T of Si-poor melts) have long tails
        z = np.clip((feats - self.feature_mean_) / self.feature_std_, -8.0, 8.0)
        return torch.tensor(z, dtype=torch.float32)

    def _loss(self, p, tasks, sig, weights=None, mask=None, local=None, log_vars=None):
        total = 0.0
        parts = {}
        for prop, rows in tasks.items():
            if mask is None:
                sel, li = None, rows.comp
            else:
                sel = mask[rows.comp]
                if not bool(sel.any()):
                    continue
                li = local[rows.comp[sel]]
            pr = {k: v[li] for k, v in p.items()}
            preds = _task_prediction(pr, prop, rows, sel)
            y = rows.y if sel is None else rows.y[sel]
            err2 = torch.stack([(v - y) ** 2 for v in preds.values()]).mean(dim=0)
            if weights is not None:
                w = weights[prop][rows.comp if sel is None else rows.comp[sel]].unsqueeze(1)
                mse = (w * err2).sum() / w.sum()
            else:
                mse = err2.mean()
            parts[prop] = float(mse.detach())
            if log_vars is None:
                total = total + mse / sig[prop] ** 2
            else:
                total = total + torch.exp(-log_vars[prop]) * mse + log_vars[prop]
        return total, parts

    def _fit_member(self, k: int, d: mdata.MeltData, feats: torch.Tensor, dev,
                    epochs: int | None = None) -> dict[str, Any]:
        """Train candidate ``k`` (seed ``seed + k``): early stopping on d's 'valid' split if it
        has one, else ``epochs`` (default ``max_epochs``) epochs, keeping the last state."""
        torch.manual_seed(self.seed + k)
        rng = np.random.default_rng(self.seed + k)
        sig = self._sigmas()
        net = MeltNet(feats.shape[1], self.hidden, self.layers, self.dropout, self.linear_skip,
                      self.refractive_index_law).to(dev)
        params = [{"params": net.parameters()}]
        log_vars = None
        if self.learn_task_weights:
            log_vars = nn.ParameterDict({k: nn.Parameter(torch.tensor(2.0 * np.log(v), device=dev))
                                         for k, v in sig.items()})
            params.append({"params": log_vars.parameters(), "weight_decay": 0.0})
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        stop_on = self.early_stopping_on
        # cosine: anneal to lr/100 over max_epochs, so a step-limited run still ends converged
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.max_epochs),
                                                            eta_min=self.lr / 100)
                 if self.lr_schedule == "cosine" else None)
        train = {p: r.to(dev) for p, r in d.tasks["train"].items()}
        valid = {p: r.to(dev) for p, r in d.tasks.get("valid", {}).items()}
        n = d.x.shape[0]
        tc = np.unique(np.concatenate([r.comp.cpu().numpy() for r in train.values()]))
        w = np.zeros(n, dtype=np.float32)
        if self.bootstrap:
            np.add.at(w, rng.choice(tc, size=tc.size, replace=True), 1.0)
        else:
            w[tc] = 1.0
        active = np.flatnonzero(w > 0)
        weights = {p: torch.tensor(w / self._rows_per_melt(r, n), device=dev) for p, r in train.items()}
        x, f = d.x.to(dev), feats.to(dev)
        vc = torch.unique(torch.cat([r.comp for r in valid.values()])) if valid else None
        vlocal = torch.full((n,), -1, dtype=torch.long, device=dev)
        if vc is not None:
            vlocal[vc] = torch.arange(vc.numel(), device=dev)
            valid_l = {p: mdata.TaskRows(vlocal[r.comp], r.y, r.T, r.lbd) for p, r in valid.items()}
        n_batches = 1 if self.batch_size <= 0 else max(1, int(np.ceil(active.size / self.batch_size)))
        best, best_state, best_epoch, wait = np.inf, None, -1, 0
        hist_train, hist_valid = [], []
        for epoch in range(self.max_epochs if epochs is None else epochs):
            net.train()
            run = 0.0
            for b in np.array_split(rng.permutation(active), n_batches):
                bt = torch.as_tensor(b, device=dev)
                mask = torch.zeros(n, dtype=torch.bool, device=dev)
                mask[bt] = True
                local = torch.full((n,), -1, dtype=torch.long, device=dev)
                local[bt] = torch.arange(bt.numel(), device=dev)
                p = net(f[bt], x[bt])
                loss, _ = self._loss(p, train, sig, weights, mask, local, log_vars)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
                opt.step()
                run += float(loss.detach()) / n_batches
            hist_train.append(run)
            if sched is not None:
                sched.step()
            if vc is None:
                continue
            net.eval()
            with torch.no_grad():
                vloss, vparts = self._loss(net(f[vc], x[vc]), valid_l, sig)
            vloss = float(vloss) if stop_on == "all" else vparts.get(stop_on, np.inf) / sig[stop_on] ** 2
            hist_valid.append(vloss)
            if vloss < best:
                best, best_epoch, wait = vloss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                wait += 1
                if wait > self.patience and epoch >= self.min_epochs:
                    break
        if best_state is None:  # no validation split: keep the last state
            best_state, best_epoch = copy.deepcopy(net.state_dict()), len(hist_train) - 1
        state = {kk: v.detach().cpu() for kk, v in best_state.items()}
        return {"state": state, "best_epoch": best_epoch, "best_valid_loss": float(best),
                "epochs_run": len(hist_train), "train_loss": hist_train, "valid_loss": hist_valid}

    def _rows_per_melt(self, rows: mdata.TaskRows, n: int) -> np.ndarray:
        """Divisor of each melt's row weight: (its number of rows in the task) ** melt_weight_power."""
        counts = np.maximum(np.bincount(rows.comp.cpu().numpy(), minlength=n), 1)
        return (counts.astype(np.float64) ** float(self.melt_weight_power)).astype(np.float32)

    def _check_options(self) -> None:
        for name, low, kind in _NUMERIC_OPTIONS:
            value = getattr(self, name)
            if value is None and name in ("n_candidates", "grad_clip"):
                continue
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if kind is int:
                ok = ok and float(value).is_integer()
            if not ok or not (value > low if name in ("lr", "grad_clip") else value >= low):
                what = "an integer" if kind is int else "a number"
                bound = f"> {low}" if name in ("lr", "grad_clip") else f">= {low}"
                raise ValueError(f"{name}: expected {what} {bound}, got {value!r}")
        if not self.dropout < 1:
            raise ValueError(f"dropout: expected a probability below 1, got {self.dropout!r}")
        if not 0 <= self.melt_weight_power <= 1:
            raise ValueError(f"melt_weight_power: expected a number in [0, 1], got {self.melt_weight_power!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule: expected 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.refractive_index_law not in REFRACTIVE_INDEX_LAWS:
            raise ValueError(f"refractive_index_law: expected one of {REFRACTIVE_INDEX_LAWS}, "
                             f"got {self.refractive_index_law!r}")
        if self.features not in ("descriptors", "oxides"):
            raise ValueError(f"features: expected 'descriptors' or 'oxides', got {self.features!r}")
        sig = self._sigmas()
        if self.early_stopping_on != "all" and self.early_stopping_on not in sig:
            raise ValueError(f"early_stopping_on: expected 'all' or one of {sorted(sig)}, "
                             f"got {self.early_stopping_on!r}")

    def _group_estimators(self) -> list[tuple[list[str], list[str], MeltSurrogate]]:
        """Validated (properties, auxiliary properties, unfitted estimator) per ``task_groups`` entry."""
        groups, seen = [], {}
        base = {k: v for k, v in self.get_params().items() if k != "task_groups"}
        for i, g in enumerate(self.task_groups):
            if not isinstance(g, dict) or not g.get("properties"):
                raise ValueError(f"task_groups[{i}]: expected a mapping with a non-empty 'properties' list")
            props = list(g["properties"])
            for prop in props:
                if prop not in mdata.PROPERTIES:
                    raise ValueError(f"task_groups[{i}].properties: unknown property {prop!r}; "
                                     f"expected one of {sorted(mdata.PROPERTIES)}")
                if prop in seen:
                    raise ValueError(f"task_groups[{i}].properties: {prop!r} is already in group {seen[prop]}")
                seen[prop] = i
            aux = list(g.get("auxiliary") or [])
            for prop in aux:
                if prop not in mdata.PROPERTIES or prop in props:
                    raise ValueError(f"task_groups[{i}].auxiliary: {prop!r}; expected a property of another "
                                     f"group (one of {sorted(set(mdata.PROPERTIES) - set(props))})")
            over = {k: v for k, v in g.items() if k not in ("properties", "auxiliary")}
            bad = sorted(set(over) - set(base) | set(over) & set(_GROUP_KEYS_FIXED))
            if bad:
                raise ValueError(f"task_groups[{i}]: cannot override {bad}; expected any of "
                                 f"{sorted(set(base) - set(_GROUP_KEYS_FIXED))}")
            est = MeltSurrogate(**{**base, **over})
            try:  # every group's options checked before any group trains
                est._check_options()
                if est.early_stopping_on not in ("all", *props, *aux):
                    raise ValueError(f"early_stopping_on: {est.early_stopping_on!r} is not trained by this group "
                                     f"{props + aux}; expected 'all' or one of them (set it per group)")
            except ValueError as exc:
                raise ValueError(f"task_groups[{i}]: {exc}") from None
            groups.append((props, aux, est))
        missing = sorted(set(mdata.PROPERTIES) - set(seen))
        if missing:
            raise ValueError(f"task_groups: properties {missing} are in no group; every property needs one")
        owner = {seen[p] for p in _VISCOSITY_GROUP}
        if len(owner) > 1:
            raise ValueError(f"task_groups: {list(_VISCOSITY_GROUP)} must be in one group (the "
                             "viscosity equations are parameterised by Tg, Sconf(Tg) and Cp)")
        return groups

    def _fit_groups(self, table: pd.DataFrame, checkpoint_dir: Path | None) -> MeltSurrogate:
        t0 = time.perf_counter()
        self.groups_, self.history_, self.rejected_candidates_ = [], [], []
        for i, (props, aux, est) in enumerate(self._group_estimators()):
            if not (table["property"].isin(props) & (table["split"] == "train")).any():
                log.warning("task group %d %s: no training rows, not trained", i, props)
                continue
            # auxiliary properties are trained on here but predicted by the group that owns them
            sub = table[table["property"].isin(props + aux)]
            log.info("task group %d: %s%s", i, props, f" (+ auxiliary {aux})" if aux else "")
            est.fit(sub, checkpoint_dir=None if checkpoint_dir is None else checkpoint_dir / f"group{i}")
            self.groups_.append((props, est))
            self.history_ += [{**h, "group": i} for h in est.history_]
            self.rejected_candidates_ += [{**h, "group": i} for h in est.rejected_candidates_]
            self.resumed_networks_ += est.resumed_networks_
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def fit(self, table: pd.DataFrame, y=None, checkpoint_dir: str | os.PathLike | None = None) -> MeltSurrogate:
        """Train on ``table`` rows with split 'train' (early stopping on 'valid').

        ``checkpoint_dir``: each trained network is written there at once; a fit interrupted
        and started again with the same settings and table reuses them (every network has its
        own seed, so the resumed model equals an uninterrupted one). Delete it after saving.
        """
        if "split" not in table or not (table["split"] == "train").any():
            raise ValueError("fit: table has no rows with split == 'train'")
        self._checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resumed_networks_ = 0
        if self.task_groups:
            return self._fit_groups(table, self._checkpoint_dir)
        self._check_options()
        self._digest = self._fit_digest(table)
        dev = torch.device(self.device)
        t0 = time.perf_counter()
        d = mdata.build(table, splits=("train", "valid"))
        tr = np.unique(np.concatenate([r.comp.numpy() for r in d.tasks["train"].values()]))
        inputs = self._inputs(d.feats)
        self.feature_mean_ = inputs[tr].mean(axis=0)
        self.feature_std_ = inputs[tr].std(axis=0) + 1e-6
        feats = self._scale(inputs)
        n_cand = max(self.n_models, int(self.n_candidates or 0))
        results = self._train([(k, None) for k in range(n_cand)], d, feats, dev)
        states, hist = [], []
        for k, res in enumerate(results):
            states.append(res.pop("state"))
            res["candidate"] = k
            hist.append(res)
            log.info("candidate %d/%d: best epoch %d of %d, valid loss %.4g, %.1f s", k + 1,
                     n_cand, res["best_epoch"], res["epochs_run"], res["best_valid_loss"],
                     res["seconds"])
        # keep the n_models candidates with the lowest validation loss (stable: ties keep order)
        keep = sorted(np.argsort([h["best_valid_loss"] for h in hist], kind="stable")[: self.n_models])
        self.members_ = [states[i] for i in keep]
        self.history_ = [hist[i] for i in keep]
        kept = set(keep)
        self.rejected_candidates_ = [
            {kk: v for kk, v in hist[i].items() if kk not in ("train_loss", "valid_loss")}
            for i in range(n_cand) if i not in kept]
        if n_cand > self.n_models:
            log.info("kept candidates %s of %d by validation loss", [int(i) for i in keep], n_cand)
        self.n_features_in_ = int(inputs.shape[1])
        self.calibration_ = {}  # predictions first carry the raw spread
        self.calibration_ = self._calibrate(table[table["split"] == "valid"])
        refit = self.refit and bool(d.tasks.get("valid"))
        # after calibrating: its predictions need no distances
        self.domain_ = self._training_domain(d, ("train", "valid") if refit else ("train",))
        if refit:  # calibrated before: valid rows become training rows
            self._refit_members(keep, mdata.merge_splits(d, ("train", "valid")), feats, dev)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @staticmethod
    def _training_domain(d: mdata.MeltData, splits) -> dict[str, np.ndarray]:
        """Unique mole-fraction vectors of the melts each property was fitted on."""
        x = d.x.numpy()
        found: dict[str, list[np.ndarray]] = {}
        for split in splits:
            for prop, rows in d.tasks.get(split, {}).items():
                found.setdefault(prop, []).append(np.unique(rows.comp.numpy()))
        return {prop: x[np.unique(np.concatenate(ix))] for prop, ix in found.items()}

    def _calibrate(self, valid: pd.DataFrame) -> dict[str, dict]:
        """Noise model per target from the validation rows (empty without them)."""
        if valid.empty:
            return {}
        pt = self.predict_table(valid)
        models = {}
        for (prop, e), g in pt.groupby(["property", "equation"]):
            m = cal.fit_noise_model(g["y_pred"] - g["y_true"], g["y_spread"])
            if m is not None:
                models[target_name(prop, e)] = m
        log.info("uncertainty calibrated on the validation rows: %s", ", ".join(
            f"{k} a={m['a']:.2f} b={m['b']:.3g}" for k, m in models.items()))
        return models

    def noise_models(self) -> dict[str, dict]:
        """Fitted noise model {'a', 'b', 'n'} per target (all task groups together)."""
        if getattr(self, "groups_", None):  # each target from the group that owns it
            return {k: m for props, est in self.groups_ for k, m in est.noise_models().items()
                    if k.split(":")[0] in props}
        return dict(self.calibration_)

    def _fit_digest(self, table: pd.DataFrame) -> str:
        """Fingerprint of the settings and rows a fit depends on (not n_jobs: same result)."""
        params = {k: v for k, v in self.get_params().items() if k != "n_jobs"}
        h = hashlib.sha256(json.dumps([FORMAT, params], sort_keys=True, default=str).encode())
        h.update(pd.util.hash_pandas_object(table.reset_index(drop=True), index=False).to_numpy().tobytes())
        return h.hexdigest()

    def _train(self, jobs, d: mdata.MeltData, feats, dev, stage: str = "candidate") -> list[dict[str, Any]]:
        """Train candidates ``jobs`` = [(k, epochs or None)], in ``n_jobs`` worker processes;
        networks already in the checkpoint directory (same digest) are taken from there."""
        ckpt = self._checkpoint_dir
        where = {k: None if ckpt is None else ckpt / f"{stage}{k}.pt" for k, _ in jobs}
        digest = {k: f"{self._digest}:{stage}:{k}:{e}" for k, e in jobs}
        done = {k: r["result"] for k, _ in jobs if (r := load_checkpoint(where[k], digest[k])) is not None}
        self.resumed_networks_ += len(done)
        if done:
            log.info("resumed %d of %d %s networks from %s", len(done), len(jobs), stage, ckpt)
        todo = [(k, e) for k, e in jobs if k not in done]
        if self.n_jobs > 1 and len(todo) > 1:
            from joblib import Parallel, delayed

            new = Parallel(n_jobs=min(self.n_jobs, len(todo)))(
                delayed(_fit_candidate)(self, k, d, feats, dev, epochs=e, checkpoint=where[k],
                                        digest=digest[k]) for k, e in todo)
        else:
            new = [_fit_candidate(self, k, d, feats, dev, set_threads=False, epochs=e,
                                  checkpoint=where[k], digest=digest[k]) for k, e in todo]
        done.update({k: r for (k, _), r in zip(todo, new, strict=True)})
        return [done[k] for k, _ in jobs]

    def _refit_members(self, keep, pooled: mdata.MeltData, feats, dev) -> None:
        """Retrain each kept candidate on train + valid for its early-stopped epoch count."""
        epochs = [h["best_epoch"] + 1 for h in self.history_]
        jobs = [(int(k), e) for k, e in zip(keep, epochs, strict=True)]
        results = self._train(jobs, pooled, feats, dev, stage="refit")
        for h, res in zip(self.history_, results, strict=True):
            h.update(refit_epochs=res["epochs_run"], refit_seconds=res["seconds"],
                     refit_train_loss=res["train_loss"])
        self.members_ = [res["state"] for res in results]
        log.info("refitted %d members on train + valid (%s epochs)", len(jobs), epochs)

    # ---------------------------------------------------------------- prediction
    def _nets(self):
        from sklearn.exceptions import NotFittedError

        if not hasattr(self, "members_"):
            raise NotFittedError("MeltSurrogate is not fitted: call fit() or load() first")
        for state in self.members_:
            net = MeltNet(self.n_features_in_, self.hidden, self.layers, self.dropout, self.linear_skip,
                          self.refractive_index_law)
            net.load_state_dict(state)
            net.eval()
            yield net

    def _member_params(self, x: np.ndarray):
        xt = torch.tensor(x, dtype=torch.float32)
        ft = self._scale(self._inputs(descriptors(x)))
        with torch.no_grad():
            for net in self._nets():
                yield net(ft, xt)

    def predict(self, X, T=None, wavelength_um: float | np.ndarray = 0.5893,
                return_std: bool = True) -> pd.DataFrame:
        """Properties for compositions ``X`` (DataFrame with oxide columns or (n, 6) array).

        ``T`` (K, scalar or one value per row) adds log10 viscosity from every equation and
        liquid Cp; the refractive index is at ``wavelength_um``. Columns ``<name>_std`` hold the
        predictive standard deviation: the ensemble spread, recalibrated on the validation rows
        for measured properties (``noise_models``); fitted parameters keep the raw spread.
        """
        if getattr(self, "groups_", None):
            outs = [(props, est.predict(X, T, wavelength_um, return_std)) for props, est in self.groups_]
            res = outs[0][1].loc[:, [c for c in outs[0][1].columns if c in (*OXIDES, "T_K", "wavelength_um")]]
            for props, out in outs:
                own = _owned_columns(props)
                keep = [c for c in out.columns if c in own or c.removesuffix("_std") in own
                        or c.removesuffix(NEAREST_SUFFIX) in own]
                res = pd.concat([res, out[keep]], axis=1)
            return res
        x = oxide_matrix(X)
        n = x.shape[0]
        Tt = None if T is None else torch.tensor(np.broadcast_to(np.asarray(T, float), (n,)).reshape(-1, 1), dtype=torch.float32)
        if Tt is not None and not bool((Tt > 0).all()):
            raise ValueError("predict: temperatures T must be positive (K)")
        lb = torch.tensor(np.broadcast_to(np.asarray(wavelength_um, float), (n,)).reshape(-1, 1), dtype=torch.float32)
        cols: dict[str, list[np.ndarray]] = {}
        for p in self._member_params(x):
            out = {k: p[k] for k in SCALAR_OUTPUTS + PARAMETER_OUTPUTS}
            out["refractive_index"] = refractive_index(p, lb)
            if Tt is not None:
                out.update({f"viscosity_{e}": v for e, v in viscosity(p, Tt).items()})
                out["cp_liquid"] = heat_capacity(p, Tt)
            for k, v in out.items():
                cols.setdefault(k, []).append(v.numpy().reshape(-1))
        res = pd.DataFrame({o: x[:, i] for i, o in enumerate(OXIDES)})
        if T is not None:
            res["T_K"] = Tt.numpy().reshape(-1)
        res["wavelength_um"] = lb.numpy().reshape(-1)
        for k, v in cols.items():
            stack = np.stack(v)
            res[k] = stack.mean(axis=0)
            if return_std:
                model = self.calibration_.get(_COLUMN_TARGET.get(k, ""))
                res[f"{k}_std"] = cal.predictive_std(stack.std(axis=0), model)
        for prop, dom in getattr(self, "domain_", {}).items():
            res[f"{prop}{NEAREST_SUFFIX}"] = nearest_training_mol(x, dom)
        return res

    def predict_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """Predict every row of a tidy table; long format with one row per (row, equation).

        ``y_spread`` is the ensemble spread, ``y_std`` the calibrated predictive standard
        deviation (equal to the spread for targets without a noise model)."""
        table = table.reset_index(drop=True)
        if "row_id" not in table:
            table = table.assign(row_id=np.arange(len(table)))
        if getattr(self, "groups_", None):
            masks = [(table["property"].isin(props), est) for props, est in self.groups_]
            return pd.concat([est.predict_table(table[m]) for m, est in masks if m.any()],
                             ignore_index=True)
        d = mdata.build(table, splits=tuple(table["split"].unique()))
        xs = d.x.numpy().astype(float)
        member_p = list(self._member_params(xs))
        frames = []
        for split, tasks in d.tasks.items():
            for prop, rows in tasks.items():
                per_member = []
                for p in member_p:
                    pr = {k: v[rows.comp] for k, v in p.items()}
                    with torch.no_grad():
                        per_member.append({k: v.numpy().reshape(-1) for k, v in _task_prediction(pr, prop, rows).items()})
                for key in per_member[0]:
                    stack = np.stack([m[key] for m in per_member])
                    spread = stack.std(axis=0)
                    model = self.calibration_.get(target_name(prop, key))
                    frames.append(pd.DataFrame({
                        "row_id": rows.row_id, "property": prop, "equation": key, "split": split,
                        "y_true": rows.y.numpy().reshape(-1), "y_pred": stack.mean(axis=0),
                        "y_std": cal.predictive_std(spread, model), "y_spread": spread}))
        out = pd.concat(frames, ignore_index=True)
        extra = table.set_index("row_id")[["T_K", "wavelength_um", *OXIDES]]
        out = out.join(extra, on="row_id")
        domain = getattr(self, "domain_", {})
        if domain:  # distance of each row's melt to the training melts of its property
            out["nearest_mol"] = np.nan
            for prop, idx in out.groupby("property").groups.items():
                if prop in domain:
                    x = out.loc[idx, list(OXIDES)].to_numpy(dtype=float)
                    out.loc[idx, "nearest_mol"] = nearest_training_mol(x / x.sum(axis=1, keepdims=True), domain[prop])
        return out

    # --------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, **meta: Any) -> None:
        """Write the fitted ensemble (weights, scaler, hyper-parameters, history) to ``path``."""
        from vitriflow.io import save_torch

        if not hasattr(self, "members_") and not getattr(self, "groups_", None):
            raise ValueError("save: the surrogate is not fitted")
        save_torch(self._blob(meta), path)

    def _blob(self, meta: dict) -> dict:
        # no wall times: the same data, settings and seed give the same file (timings go to the
        # training record's provenance)
        history = [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in self.history_]
        blob = {"format": FORMAT, "params": self.get_params(), "history": history, "meta": meta,
                "equations": list(eq.EQUATIONS)}
        if getattr(self, "groups_", None):
            blob["groups"] = [{"properties": props, "blob": est._blob({})} for props, est in self.groups_]
            return blob
        blob.update(members=self.members_, calibration=self.calibration_,
                    domain={k: torch.from_numpy(v) for k, v in getattr(self, "domain_", {}).items()},
                    feature_mean=self.feature_mean_.tolist(),
                    feature_std=self.feature_std_.tolist(), n_features_in=self.n_features_in_)
        return blob

    @classmethod
    def load(cls, path: str | os.PathLike) -> MeltSurrogate:
        import pickle

        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError):  # another kind of file altogether
            blob = None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a vitriflow melt surrogate (expected format {FORMAT})")
        return cls._from_blob(blob)

    @classmethod
    def _from_blob(cls, blob: dict) -> MeltSurrogate:
        est = cls(**blob["params"])
        est.history_ = blob["history"]
        est.fit_seconds_ = blob.get("fit_seconds")
        est.meta_ = blob.get("meta", {})
        if "groups" in blob:
            est.groups_ = [(list(g["properties"]), cls._from_blob(g["blob"])) for g in blob["groups"]]
            return est
        est.members_ = blob["members"]
        est.calibration_ = blob.get("calibration", {})  # absent in files from before calibration
        est.domain_ = {k: v.numpy() for k, v in blob.get("domain", {}).items()}  # and before domains
        est.feature_mean_ = np.asarray(blob["feature_mean"])
        est.feature_std_ = np.asarray(blob["feature_std"])
        est.n_features_in_ = int(blob["n_features_in"])
        return est
