"""Snakemake adapter: train the bagged physics-guided surrogate (GPU if present, else CPU).
Each trained network goes to a checkpoint directory at once, so a killed job resumes."""

import shutil

import torch

from vitriflow.io import provenance, read_table, write_json
from vitriflow.runtime import pick_device, script_logger, seed_everything
from vitriflow.surrogates.melt.estimator import TIMING_KEYS
from vitriflow.surrogates.viscosity import estimator_from_config

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_train", sm.log[0])
cfg = dict(sm.params.cfg)
torch.set_num_threads(int(sm.threads))
seed_everything(int(cfg["seed"]))
device = pick_device(cfg["device"])
table, prov = read_table(sm.input.table)
est = estimator_from_config(cfg, device=device)
if device == "cpu" and "n_jobs" not in (cfg.get("model") or {}):
    est.set_params(n_jobs=int(sm.threads))  # candidates in parallel processes, one thread each
log.info("mode %s on %s (%d threads): %s", cfg["mode"], device, sm.threads, est.get_params())
est.fit(table, checkpoint_dir=sm.params.checkpoint_dir)
# wall times and resumed networks vary from run to run: the provenance record, not the summary
summary = {"mode": cfg["mode"], "device": device, "threads": int(sm.threads),
           "params": est.get_params(),
           "members": [{k: v for k, v in h.items() if k not in ("train_loss", "valid_loss", *TIMING_KEYS)}
                       for h in est.history_],
           "rejected_candidates": [{k: v for k, v in h.items() if k not in TIMING_KEYS}
                                   for h in getattr(est, "rejected_candidates_", [])],
           "data_provenance": {k: prov.get(k) for k in ("imelt_version", "files")},
           "provenance": provenance(stage="viscosity_train", inputs=[sm.input.table], seed=int(cfg["seed"]),
                                    fit_seconds=est.fit_seconds_, resumed_networks=est.resumed_networks_,
                                    member_seconds=[{k: h[k] for k in TIMING_KEYS if k in h}
                                                    for h in est.history_])}
est.save(sm.output.model, mode=cfg["mode"], device=device, data_files=prov.get("files"))
write_json(summary, sm.output.summary)
shutil.rmtree(sm.params.checkpoint_dir, ignore_errors=True)  # the model file has them all now
log.info("trained %d members in %.1f s", est.n_models, est.fit_seconds_)
