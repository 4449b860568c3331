"""scikit-learn-shaped estimator: a bagged ensemble of physics-guided multitask networks.

``ViscositySurrogate().fit(table)`` trains on the rows of a tidy property table (see
``vitriflow.surrogates.viscosity.data``) whose ``split`` is ``train``, early-stopping on
``valid``. Each ensemble member has its own seed (and, with ``bootstrap``, its own resample of
the training *compositions*: all measurements of a melt stay together); predictions are the
ensemble mean, and the spread (standard deviation over members), recalibrated on the validation
rows into a predictive standard deviation (``vitriflow.surrogates.calibration``), is the
uncertainty. One network's training loop: ``training``.
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
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from vitriflow.io import load_checkpoint
from vitriflow.surrogates import calibration as cal
from vitriflow.surrogates.domain import NEAREST_SUFFIX, nearest_training_mol
from vitriflow.surrogates.viscosity import equations as eq
from vitriflow.surrogates.viscosity import persistence, tensors, training, uncertainty
from vitriflow.surrogates.viscosity.data import PROPERTIES, target_name
from vitriflow.surrogates.viscosity.density import fit_prior, prior_volume
from vitriflow.surrogates.viscosity.features import (
    OXIDES,
    charge_balance,
    descriptors,
    oxide_matrix,
)
from vitriflow.surrogates.viscosity.network import (
    MeltNet,
    heat_capacity,
    refractive_index,
    viscosity,
)
from vitriflow.surrogates.viscosity.options import check_options

log = logging.getLogger("vitriflow.surrogates.viscosity")
SCALAR_OUTPUTS = (
    "tg",
    "sconf_tg",
    "fragility",
    "density",
    "liquidus",
    "elastic_modulus",
    "cte",
    "abbe_number",
)
PARAMETER_OUTPUTS = (
    "ae",
    "a_am",
    "a_vft",
    "a_fv",
    "t0_vft",
    "t0_fv",
    "c_fv",
    "cp_a",
    "cp_b",
    "molar_volume",
)


# predict() column -> calibrated target
_COLUMN_TARGET = {
    **{p: p for p in PROPERTIES if p != "viscosity"},
    **{f"viscosity_{e}": f"viscosity:{e}" for e in eq.EQUATIONS},
}


def _owned_columns(props) -> set[str]:
    """Output columns of ``predict`` that a group with these properties provides."""
    cols = set(props)
    if "viscosity" in props:  # every equation parameter except the density's molar volume
        cols |= (
            {f"viscosity_{e}" for e in eq.EQUATIONS}
            | {"fragility"}
            | (set(PARAMETER_OUTPUTS) - {"molar_volume"})
        )
    if "density" in props:
        cols.add("molar_volume")
    return cols




class ViscositySurrogate(BaseEstimator):
    """Bagged physics-guided network for NKCMAS melt and glass properties.

    Parameters are explicit (sklearn style); ``sigmas`` overrides the per-task noise scales of
    ``options.DEFAULT_SIGMAS`` that weight the multitask loss.
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
    them: NBO/T, optical basicity, pairwise ratios), 'oxides' (the 6 mole fractions alone) or
    'charge_balance' (the 6 mole fractions and 4 kinked charge-balance terms; ``features``).
    ``density_prior``: 'pmv' (the molar volume is the partial-molar-volume glass-density model,
    refitted on the training densities, times a learned correction; ``density``) or 'none'.
    ``calibration``: 'valid', 'oof' or 'none', with ``calibration_folds``,
    ``calibration_members`` and ``calibration_radius_mol`` (``uncertainty``).
    Types and ranges of every parameter: ``schemas/viscosity_preset.schema.yaml``, checked by
    ``fit``.
    """

    def __init__(
        self,
        n_models: int = 10,
        hidden: int = 256,
        layers: int = 3,
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 1500,
        patience: int = 150,
        batch_size: int = 512,
        bootstrap: bool = True,
        seed: int = 0,
        device: str = "cpu",
        sigmas: dict[str, float] | None = None,
        min_epochs: int = 0,
        lr_schedule: str = "constant",
        n_candidates: int | None = None,
        early_stopping_on: str = "all",
        learn_task_weights: bool = False,
        n_jobs: int = 1,
        grad_clip: float | None = None,
        task_groups: list[dict] | None = None,
        refit: bool = False,
        linear_skip: bool = False,
        melt_weight_power: float = 0.0,
        refractive_index_law: str = "sellmeier",
        features: str = "descriptors",
        density_prior: str = "none",
        calibration: str = "valid",
        calibration_folds: int = 5,
        calibration_members: int | None = None,
        calibration_radius_mol: float = 2.0,
    ):
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
        self.density_prior = density_prior
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.calibration_members = calibration_members
        self.calibration_radius_mol = calibration_radius_mol

    # ------------------------------------------------------------------ training
    def _inputs(self, feats: np.ndarray) -> np.ndarray:
        """The network's input columns from the 39 descriptors: all, the 6 mole fractions, or
        the 6 mole fractions with the 4 charge-balance terms."""
        if self.features == "charge_balance":
            x = feats[:, : len(OXIDES)]
            return np.concatenate([x, charge_balance(x)], axis=1)
        return feats if self.features == "descriptors" else feats[:, : len(OXIDES)]

    def _scale(self, feats: np.ndarray) -> torch.Tensor:
        # clipped: a few descriptors (NBO/T of Si-poor melts) have long tails
        z = np.clip((feats - self.feature_mean_) / self.feature_std_, -8.0, 8.0)
        return torch.tensor(z, dtype=torch.float32)

    def _fit_member(
        self, k: int, d: tensors.MeltData, feats: torch.Tensor, dev, epochs: int | None = None
    ) -> dict[str, Any]:
        """Train candidate ``k`` (``training.fit_member``)."""
        return training.fit_member(self, k, d, feats, dev, epochs)

    def _check_options(self) -> None:
        check_options(self.get_params())

    def _group_estimators(self) -> list[tuple[list[str], list[str], ViscositySurrogate]]:
        """Validated (properties, auxiliary properties, unfitted estimator) per task group."""
        return [
            (props, aux, ViscositySurrogate(**params))
            for props, aux, params in check_options(self.get_params())
        ]

    def _fit_groups(self, table: pd.DataFrame, checkpoint_dir: Path | None) -> ViscositySurrogate:
        t0 = time.perf_counter()
        self.groups_, self.history_, self.rejected_candidates_ = [], [], []
        for i, (props, aux, est) in enumerate(self._group_estimators()):
            if not (table["property"].isin(props) & (table["split"] == "train")).any():
                log.warning("task group %d %s: no training rows, not trained", i, props)
                continue
            # auxiliary properties are trained on here but predicted by the group that owns them
            sub = table[table["property"].isin(props + aux)]
            log.info("task group %d: %s%s", i, props, f" (+ auxiliary {aux})" if aux else "")
            est.fit(
                sub, checkpoint_dir=None if checkpoint_dir is None else checkpoint_dir / f"group{i}"
            )
            self.groups_.append((props, est))
            self.history_ += [{**h, "group": i} for h in est.history_]
            self.rejected_candidates_ += [{**h, "group": i} for h in est.rejected_candidates_]
            self.resumed_networks_ += est.resumed_networks_
        oofs = [est.oof_[est.oof_["property"].isin(props)] for props, est in self.groups_
                if getattr(est, "oof_", None) is not None]
        self.oof_ = pd.concat(oofs, ignore_index=True) if oofs else None
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def fit(
        self, table: pd.DataFrame, y=None, checkpoint_dir: str | os.PathLike | None = None
    ) -> ViscositySurrogate:
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
        d = tensors.build(table, splits=("train", "valid"))
        fitted = table[table["split"].isin(("train", "valid") if self.refit else ("train",))]
        self.density_prior_ = fit_prior(fitted) if self.density_prior == "pmv" else None
        d.v_prior = self._prior_volume(d.x.numpy().astype(float))
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
            log.info(
                "candidate %d/%d: best epoch %d of %d, valid loss %.4g, %.1f s",
                k + 1,
                n_cand,
                res["best_epoch"],
                res["epochs_run"],
                res["best_valid_loss"],
                res["seconds"],
            )
        # keep the n_models candidates with the lowest validation loss (stable: ties keep order)
        keep = sorted(
            np.argsort([h["best_valid_loss"] for h in hist], kind="stable")[: self.n_models]
        )
        self.members_ = [states[i] for i in keep]
        self.history_ = [hist[i] for i in keep]
        kept = set(keep)
        self.rejected_candidates_ = [
            {kk: v for kk, v in hist[i].items() if kk not in ("train_loss", "valid_loss")}
            for i in range(n_cand)
            if i not in kept
        ]
        if n_cand > self.n_models:
            log.info("kept candidates %s of %d by validation loss", [int(i) for i in keep], n_cand)
        self.n_features_in_ = int(inputs.shape[1])
        self.calibration_, self.domain_, self.oof_ = {}, {}, None  # raw spread, no distances
        self.calibration_ = uncertainty.calibrate(self, table, self._checkpoint_dir)
        refit = self.refit and bool(d.tasks.get("valid"))
        self.domain_ = self._training_domain(d, ("train", "valid") if refit else ("train",))
        if refit:  # calibrated before: valid rows become training rows
            self._refit_members(keep, tensors.merge_splits(d, ("train", "valid")), feats, dev)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @staticmethod
    def _training_domain(d: tensors.MeltData, splits) -> dict[str, np.ndarray]:
        """Unique mole-fraction vectors of the melts each property was fitted on."""
        x = d.x.numpy()
        found: dict[str, list[np.ndarray]] = {}
        for split in splits:
            for prop, rows in d.tasks.get(split, {}).items():
                found.setdefault(prop, []).append(np.unique(rows.comp.numpy()))
        return {prop: x[np.unique(np.concatenate(ix))] for prop, ix in found.items()}

    def _prior_volume(self, x: np.ndarray) -> torch.Tensor | None:
        """(n, 1) prior molar volumes of compositions ``x`` (None without a density prior)."""
        coef = getattr(self, "density_prior_", None)
        return None if coef is None else torch.from_numpy(prior_volume(coef, x))

    def noise_models(self) -> dict[str, dict]:
        """Fitted noise model {'a', 'b', 'n'} per target (all task groups together)."""
        if getattr(self, "groups_", None):  # each target from the group that owns it
            return {
                k: m
                for props, est in self.groups_
                for k, m in est.noise_models().items()
                if k.split(":")[0] in props
            }
        return dict(self.calibration_)

    def _fit_digest(self, table: pd.DataFrame) -> str:
        """Fingerprint of the settings and rows a fit depends on (not n_jobs: same result)."""
        params = {k: v for k, v in self.get_params().items() if k != "n_jobs"}
        key = json.dumps([persistence.FORMAT, params], sort_keys=True, default=str)
        h = hashlib.sha256(key.encode())
        h.update(
            pd.util.hash_pandas_object(table.reset_index(drop=True), index=False)
            .to_numpy()
            .tobytes()
        )
        return h.hexdigest()

    def _train(
        self, jobs, d: tensors.MeltData, feats, dev, stage: str = "candidate"
    ) -> list[dict[str, Any]]:
        """Train candidates ``jobs`` = [(k, epochs or None)], in ``n_jobs`` worker processes;
        networks already in the checkpoint directory (same digest) are taken from there."""
        ckpt = self._checkpoint_dir
        where = {k: None if ckpt is None else ckpt / f"{stage}{k}.pt" for k, _ in jobs}
        digest = {k: f"{self._digest}:{stage}:{k}:{e}" for k, e in jobs}
        done = {
            k: r["result"]
            for k, _ in jobs
            if (r := load_checkpoint(where[k], digest[k])) is not None
        }
        self.resumed_networks_ += len(done)
        if done:
            log.info("resumed %d of %d %s networks from %s", len(done), len(jobs), stage, ckpt)
        todo = [(k, e) for k, e in jobs if k not in done]
        if self.n_jobs > 1 and len(todo) > 1:
            from joblib import Parallel, delayed

            new = Parallel(n_jobs=min(self.n_jobs, len(todo)))(
                delayed(training.fit_candidate)(
                    self, k, d, feats, dev, epochs=e, checkpoint=where[k], digest=digest[k]
                )
                for k, e in todo
            )
        else:
            new = [
                training.fit_candidate(
                    self,
                    k,
                    d,
                    feats,
                    dev,
                    set_threads=False,
                    epochs=e,
                    checkpoint=where[k],
                    digest=digest[k],
                )
                for k, e in todo
            ]
        done.update({k: r for (k, _), r in zip(todo, new, strict=True)})
        return [done[k] for k, _ in jobs]

    def _refit_members(self, keep, pooled: tensors.MeltData, feats, dev) -> None:
        """Retrain each kept candidate on train + valid for its early-stopped epoch count."""
        epochs = [h["best_epoch"] + 1 for h in self.history_]
        jobs = [(int(k), e) for k, e in zip(keep, epochs, strict=True)]
        results = self._train(jobs, pooled, feats, dev, stage="refit")
        for h, res in zip(self.history_, results, strict=True):
            h.update(
                refit_epochs=res["epochs_run"],
                refit_seconds=res["seconds"],
                refit_train_loss=res["train_loss"],
            )
        self.members_ = [res["state"] for res in results]
        log.info("refitted %d members on train + valid (%s epochs)", len(jobs), epochs)

    # ---------------------------------------------------------------- prediction
    def _nets(self):
        from sklearn.exceptions import NotFittedError

        if not hasattr(self, "members_"):
            raise NotFittedError("ViscositySurrogate is not fitted: call fit() or load() first")
        for state in self.members_:
            net = MeltNet(
                self.n_features_in_,
                self.hidden,
                self.layers,
                self.dropout,
                self.linear_skip,
                self.refractive_index_law,
                self.density_prior == "pmv",
            )
            net.load_state_dict(state)
            net.eval()
            yield net

    def _member_params(self, x: np.ndarray):
        xt = torch.tensor(x, dtype=torch.float32)
        ft = self._scale(self._inputs(descriptors(x)))
        vp = self._prior_volume(x)
        with torch.no_grad():
            for net in self._nets():
                yield net(ft, xt, vp)

    def predict(
        self, X, T=None, wavelength_um: float | np.ndarray = 0.5893, return_std: bool = True
    ) -> pd.DataFrame:
        """Properties for compositions ``X`` (DataFrame with oxide columns or (n, 6) array).

        ``T`` (K, scalar or one value per row) adds log10 viscosity from every equation and
        liquid Cp; the refractive index is at ``wavelength_um``. Columns ``<name>_std`` hold the
        predictive standard deviation: the ensemble spread, recalibrated on the validation rows
        for measured properties (``noise_models``); fitted parameters keep the raw spread.
        """
        if getattr(self, "groups_", None):
            outs = [
                (props, est.predict(X, T, wavelength_um, return_std)) for props, est in self.groups_
            ]
            res = outs[0][1].loc[
                :, [c for c in outs[0][1].columns if c in (*OXIDES, "T_K", "wavelength_um")]
            ]
            for props, out in outs:
                own = _owned_columns(props)
                keep = [
                    c
                    for c in out.columns
                    if c in own
                    or c.removesuffix("_std") in own
                    or c.removesuffix(NEAREST_SUFFIX) in own
                ]
                res = pd.concat([res, out[keep]], axis=1)
            return res
        x = oxide_matrix(X)
        n = x.shape[0]
        Tt = (
            None
            if T is None
            else torch.tensor(
                np.broadcast_to(np.asarray(T, float), (n,)).reshape(-1, 1), dtype=torch.float32
            )
        )
        if Tt is not None and not bool((Tt > 0).all()):
            raise ValueError("predict: temperatures T must be positive (K)")
        lb = torch.tensor(
            np.broadcast_to(np.asarray(wavelength_um, float), (n,)).reshape(-1, 1),
            dtype=torch.float32,
        )
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
        dist = {p: nearest_training_mol(x, dom) for p, dom in getattr(self, "domain_", {}).items()}
        for k, v in cols.items():
            stack = np.stack(v)
            res[k] = stack.mean(axis=0)
            if return_std:
                target = _COLUMN_TARGET.get(k, "")
                model = self.calibration_.get(target)
                res[f"{k}_std"] = cal.predictive_std(stack.std(axis=0), model,
                                                     dist.get(target.split(":")[0]))
        for prop, d in dist.items():
            res[f"{prop}{NEAREST_SUFFIX}"] = d
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
            return pd.concat(
                [est.predict_table(table[m]) for m, est in masks if m.any()], ignore_index=True
            )
        d = tensors.build(table, splits=tuple(table["split"].unique()))
        xs = d.x.numpy().astype(float)
        member_p = list(self._member_params(xs))
        frames = []
        for split, tasks in d.tasks.items():
            for prop, rows in tasks.items():
                per_member = []
                for p in member_p:
                    pr = {k: v[rows.comp] for k, v in p.items()}
                    with torch.no_grad():
                        per_member.append(
                            {
                                k: v.numpy().reshape(-1)
                                for k, v in training.task_prediction(pr, prop, rows).items()
                            }
                        )
                for key in per_member[0]:
                    stack = np.stack([m[key] for m in per_member])
                    spread = stack.std(axis=0)
                    model = self.calibration_.get(target_name(prop, key))
                    frames.append(
                        pd.DataFrame(
                            {
                                "row_id": rows.row_id,
                                "property": prop,
                                "equation": key,
                                "split": split,
                                "y_true": rows.y.numpy().reshape(-1),
                                "y_pred": stack.mean(axis=0),
                                "y_std": cal.predictive_std(spread, model),
                                "y_spread": spread,
                            }
                        )
                    )
        out = pd.concat(frames, ignore_index=True)
        extra = table.set_index("row_id")[["T_K", "wavelength_um", *OXIDES]]
        out = out.join(extra, on="row_id")
        domain = getattr(self, "domain_", {})
        if domain:  # distance of each row's melt to the training melts of its property
            out["nearest_mol"] = np.nan
            for prop, idx in out.groupby("property").groups.items():
                if prop in domain:
                    x = out.loc[idx, list(OXIDES)].to_numpy(dtype=float)
                    out.loc[idx, "nearest_mol"] = nearest_training_mol(
                        x / x.sum(axis=1, keepdims=True), domain[prop]
                    )
            # sigma of noise models that depend on distance: from each row's own distance
            for (prop, key), idx in out.groupby(["property", "equation"]).groups.items():
                model = self.calibration_.get(target_name(prop, key))
                if cal.uses_distance(model):
                    out.loc[idx, "y_std"] = cal.predictive_std(
                        out.loc[idx, "y_spread"].to_numpy(), model,
                        out.loc[idx, "nearest_mol"].to_numpy())
        return out

    # --------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, **meta: Any) -> None:
        """Write the fitted ensemble (weights, scaler, hyper-parameters, history) to ``path``."""
        from vitriflow.io import save_torch

        if not hasattr(self, "members_") and not getattr(self, "groups_", None):
            raise ValueError("save: the surrogate is not fitted")
        save_torch(persistence.to_blob(self, meta), path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ViscositySurrogate:
        """The model saved at ``path``; ValueError naming the file for anything else (another
        kind of file, or a model file cut short or corrupted)."""
        return persistence.load(cls, path)
