"""Training of one network of the ensemble: the weighted multitask loss and the epoch loop with
early stopping. Module-level functions so that joblib worker processes can run them."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vitriflow.io import save_checkpoint
from vitriflow.surrogates.viscosity import tensors
from vitriflow.surrogates.viscosity.network import (
    MeltNet,
    heat_capacity,
    refractive_index,
    viscosity,
)
from vitriflow.surrogates.viscosity.options import sigmas


def task_prediction(p, prop: str, rows: tensors.TaskRows, sel=None) -> dict[str, torch.Tensor]:
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


def multitask_loss(p, tasks, sig, weights=None, mask=None, local=None, log_vars=None):
    """(sum over tasks of MSE / sigma^2, or the learned-weight form; {task: MSE}). ``mask``,
    ``local``: the compositions of a minibatch and their rows in ``p``."""
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
        preds = task_prediction(pr, prop, rows, sel)
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


def rows_per_melt(rows: tensors.TaskRows, n: int, power: float) -> np.ndarray:
    """Divisor of each melt's row weight: (its number of rows in the task) ** power."""
    counts = np.maximum(np.bincount(rows.comp.cpu().numpy(), minlength=n), 1)
    return (counts.astype(np.float64) ** float(power)).astype(np.float32)


def fit_member(
    est, k: int, d: tensors.MeltData, feats: torch.Tensor, dev, epochs: int | None = None
) -> dict[str, Any]:
    """Train candidate ``k`` of estimator ``est`` (seed ``est.seed + k``): early stopping on d's
    'valid' split if it has one, else ``epochs`` (default ``max_epochs``) epochs, keeping the
    last state."""
    torch.manual_seed(est.seed + k)
    rng = np.random.default_rng(est.seed + k)
    sig = sigmas(est.sigmas)
    net = MeltNet(
        feats.shape[1],
        est.hidden,
        est.layers,
        est.dropout,
        est.linear_skip,
        est.refractive_index_law,
        est.density_prior == "pmv",
    ).to(dev)
    params = [{"params": net.parameters()}]
    log_vars = None
    if est.learn_task_weights:
        log_vars = nn.ParameterDict(
            {k: nn.Parameter(torch.tensor(2.0 * np.log(v), device=dev)) for k, v in sig.items()}
        )
        params.append({"params": log_vars.parameters(), "weight_decay": 0.0})
    opt = torch.optim.AdamW(params, lr=est.lr, weight_decay=est.weight_decay)
    stop_on = est.early_stopping_on
    # cosine: anneal to lr/100 over max_epochs, so a step-limited run still ends converged
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, est.max_epochs), eta_min=est.lr / 100
        )
        if est.lr_schedule == "cosine"
        else None
    )
    train = {p: r.to(dev) for p, r in d.tasks["train"].items()}
    valid = {p: r.to(dev) for p, r in d.tasks.get("valid", {}).items()}
    n = d.x.shape[0]
    tc = np.unique(np.concatenate([r.comp.cpu().numpy() for r in train.values()]))
    w = np.zeros(n, dtype=np.float32)
    if est.bootstrap:
        np.add.at(w, rng.choice(tc, size=tc.size, replace=True), 1.0)
    else:
        w[tc] = 1.0
    active = np.flatnonzero(w > 0)
    weights = {
        p: torch.tensor(w / rows_per_melt(r, n, est.melt_weight_power), device=dev)
        for p, r in train.items()
    }
    x, f = d.x.to(dev), feats.to(dev)
    vp = None if d.v_prior is None else d.v_prior.to(dev)
    vc = torch.unique(torch.cat([r.comp for r in valid.values()])) if valid else None
    vlocal = torch.full((n,), -1, dtype=torch.long, device=dev)
    if vc is not None:
        vlocal[vc] = torch.arange(vc.numel(), device=dev)
        valid_l = {p: tensors.TaskRows(vlocal[r.comp], r.y, r.T, r.lbd) for p, r in valid.items()}
    n_batches = 1 if est.batch_size <= 0 else max(1, int(np.ceil(active.size / est.batch_size)))
    best, best_state, best_epoch, wait = np.inf, None, -1, 0
    hist_train, hist_valid = [], []
    for epoch in range(est.max_epochs if epochs is None else epochs):
        net.train()
        run = 0.0
        for b in np.array_split(rng.permutation(active), n_batches):
            bt = torch.as_tensor(b, device=dev)
            mask = torch.zeros(n, dtype=torch.bool, device=dev)
            mask[bt] = True
            local = torch.full((n,), -1, dtype=torch.long, device=dev)
            local[bt] = torch.arange(bt.numel(), device=dev)
            p = net(f[bt], x[bt], None if vp is None else vp[bt])
            loss, _ = multitask_loss(p, train, sig, weights, mask, local, log_vars)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if est.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), est.grad_clip)
            opt.step()
            run += float(loss.detach()) / n_batches
        hist_train.append(run)
        if sched is not None:
            sched.step()
        if vc is None:
            continue
        net.eval()
        with torch.no_grad():
            pv = net(f[vc], x[vc], None if vp is None else vp[vc])
            vloss, vparts = multitask_loss(pv, valid_l, sig)
        vloss = (
            float(vloss) if stop_on == "all" else vparts.get(stop_on, np.inf) / sig[stop_on] ** 2
        )
        hist_valid.append(vloss)
        if vloss < best:
            best, best_epoch, wait = vloss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            wait += 1
            if wait > est.patience and epoch >= est.min_epochs:
                break
    if best_state is None:  # no validation split: keep the last state
        best_state, best_epoch = copy.deepcopy(net.state_dict()), len(hist_train) - 1
    state = {kk: v.detach().cpu() for kk, v in best_state.items()}
    return {
        "state": state,
        "best_epoch": best_epoch,
        "best_valid_loss": float(best),
        "epochs_run": len(hist_train),
        "train_loss": hist_train,
        "valid_loss": hist_valid,
    }


def fit_candidate(
    est,
    k: int,
    d,
    feats,
    dev,
    set_threads: bool = True,
    epochs: int | None = None,
    checkpoint: Path | None = None,
    digest: str = "",
) -> dict[str, Any]:
    """One candidate network; saved to ``checkpoint`` as soon as it is trained, so a killed fit
    loses at most the running ones."""
    if set_threads:
        torch.set_num_threads(1)
    t1 = time.perf_counter()
    res = est._fit_member(k, d, feats, dev, epochs)
    res["seconds"] = time.perf_counter() - t1
    if checkpoint is not None:
        save_checkpoint(checkpoint, digest, {"result": res})
    return res
