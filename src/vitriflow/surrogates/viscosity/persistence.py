"""The saved model file (one ``torch.save`` dict, tensors and plain types only, read back with
``weights_only=True``) and the training record of the train rule."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from vitriflow.surrogates.viscosity import equations as eq

# the file's format tag (unchanged since the first release, so older files still load)
FORMAT = "vitriflow-melt-surrogate/1"
TIMING_KEYS = ("seconds", "refit_seconds")  # per-network wall times in the training history


def to_blob(est, meta: dict) -> dict:
    """Everything a fitted estimator needs to predict. No wall times: the same data, settings
    and seed give the same file (timings go to the training record's provenance)."""
    history = [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in est.history_]
    blob = {
        "format": FORMAT,
        "params": est.get_params(),
        "history": history,
        "meta": meta,
        "equations": list(eq.EQUATIONS),
    }
    if getattr(est, "groups_", None):
        blob["groups"] = [
            {"properties": props, "blob": to_blob(g, {})} for props, g in est.groups_
        ]
        return blob
    blob.update(
        members=est.members_,
        calibration=est.calibration_,
        domain={k: torch.from_numpy(v) for k, v in getattr(est, "domain_", {}).items()},
        feature_mean=est.feature_mean_.tolist(),
        feature_std=est.feature_std_.tolist(),
        n_features_in=est.n_features_in_,
    )
    if getattr(est, "density_prior_", None) is not None:
        blob["density_prior"] = dict(est.density_prior_)
    return blob


def from_blob(cls, blob: dict):
    """An estimator of class ``cls`` from ``to_blob``'s dict."""
    est = cls(**blob["params"])
    est.history_ = blob["history"]
    est.fit_seconds_ = blob.get("fit_seconds")
    est.meta_ = blob.get("meta", {})
    if "groups" in blob:
        est.groups_ = [(list(g["properties"]), from_blob(cls, g["blob"])) for g in blob["groups"]]
        return est
    est.members_ = blob["members"]
    est.calibration_ = blob.get("calibration", {})  # absent in older files
    est.domain_ = {k: v.numpy() for k, v in blob.get("domain", {}).items()}  # likewise
    est.feature_mean_ = np.asarray(blob["feature_mean"])
    est.feature_std_ = np.asarray(blob["feature_std"])
    est.n_features_in_ = int(blob["n_features_in"])
    est.density_prior_ = blob.get("density_prior")
    return est


def load(cls, path: str | os.PathLike):
    """The estimator saved at ``path``; ValueError naming the file when it is another kind of
    file, or a model file cut short or corrupted (torch reports those in many ways)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure to read is the same user error
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        why = why if len(why) <= 100 else why[:97] + "..."
        raise ValueError(f"{path}: not a readable vitriflow viscosity model (expected format "
                         f"{FORMAT}; the file may be truncated or corrupt: {why})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a vitriflow viscosity model (expected format {FORMAT})")
    try:
        est = from_blob(cls, blob)
        for sub in [est, *(e for _, e in getattr(est, "groups_", None) or [])]:
            if hasattr(sub, "members_"):
                for _ in sub._nets():  # every network's tensors fit its architecture
                    pass
        return est
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        # RuntimeError: torch's load_state_dict on tensors whose shapes were damaged
        why = (str(exc).strip().splitlines() or [""])[0][:100]
        raise ValueError(f"{path}: incomplete or damaged vitriflow viscosity model "
                         f"({type(exc).__name__}: {why}); expected the file written by "
                         "ViscositySurrogate.save") from None


def training_record(est, mode: str, device: str, threads: int, data_provenance: dict,
                    provenance: dict) -> dict[str, Any]:
    """The training summary the train rule writes: settings, per-member history without wall
    times (those vary from run to run and go to ``provenance``), the data files used."""
    skip = ("train_loss", "valid_loss", *TIMING_KEYS)
    return {
        "mode": mode,
        "device": device,
        "threads": int(threads),
        "params": est.get_params(),
        "members": [{k: v for k, v in h.items() if k not in skip} for h in est.history_],
        "rejected_candidates": [{k: v for k, v in h.items() if k not in TIMING_KEYS}
                                for h in getattr(est, "rejected_candidates_", [])],
        "data_provenance": {k: data_provenance.get(k) for k in ("imelt_version", "files")},
        "provenance": {
            **provenance,
            "fit_seconds": est.fit_seconds_,
            "resumed_networks": est.resumed_networks_,
            "member_seconds": [{k: h[k] for k in TIMING_KEYS if k in h} for h in est.history_],
        },
    }
