"""Train the surrogate of the configured preset, checkpointing each network as it is done."""
import shutil

import pandas as pd
import torch

from vitriflow.io import provenance, read_table, write_json, write_table
from vitriflow.runtime import pick_device, script_logger, seed_everything
from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
from vitriflow.surrogates.viscosity.persistence import training_record
from vitriflow.surrogates.viscosity.presets import estimator_params, load_preset


def main(smk):
    log = script_logger("viscosity", smk.log[0])
    section = smk.params.viscosity
    torch.set_num_threads(int(smk.threads))
    seed_everything(int(section["seed"]))
    device = pick_device(section["device"])
    table, prov = read_table(smk.input.table)
    est = ViscositySurrogate(device=device,
                             **estimator_params(section, load_preset(smk.input.preset)))
    if device == "cpu" and "n_jobs" not in section["model"]:
        est.set_params(n_jobs=int(smk.threads))  # candidates in parallel processes, one thread each
    log.info("mode %s on %s (%d threads): %s", section["mode"], device, smk.threads,
             est.get_params())
    est.fit(table, checkpoint_dir=smk.params.checkpoint_dir)
    run = provenance(stage="viscosity_train", inputs=[smk.input.table, smk.input.preset],
                     seed=int(section["seed"]))
    est.save(smk.output.model, mode=section["mode"], device=device, data_files=prov.get("files"))
    write_json(training_record(est, section["mode"], device, smk.threads, prov, run),
               smk.output.summary)
    oof = est.oof_ if est.oof_ is not None else pd.DataFrame()  # calibration "oof" only
    write_table(oof, smk.output.cv, {**run, "what": "composition-grouped out-of-fold predictions"})
    shutil.rmtree(smk.params.checkpoint_dir, ignore_errors=True)  # the model file has them all
    log.info("trained %d members in %.1f s", est.n_models, est.fit_seconds_)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
