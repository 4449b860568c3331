"""Snakemake adapter: vitriflow and pretrained i-Melt on the same valid/test rows; RMSE table
with a paired bootstrap (over compositions) of the RMSE difference; test coverage of
vitriflow's predicted intervals; RMSE inside and beyond 5 mol% of the nearest training melt."""

import pandas as pd
import torch

from vitriflow.io import provenance, read_table, write_csv, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity import (
    MeltSurrogate,
    comparison_table,
    domain_table,
    imelt_predict_table,
    rmse_table,
    uncertainty_table,
)

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_evaluate", sm.log[0])
torch.set_num_threads(int(sm.threads))
table, _ = read_table(sm.input.table)
rows = table[table["split"].isin(["valid", "test"]) & table["source"].str.startswith("imelt:")]
model = MeltSurrogate.load(sm.input.model)
ours = model.predict_table(rows)
prov = provenance(stage="viscosity_evaluate", inputs=[sm.input.table, sm.input.model])
write_table(ours, sm.output.vitriflow, prov)
preds = {"vitriflow": ours}
if sm.params.compare_imelt:
    theirs = imelt_predict_table(rows)
    preds["i-Melt"] = theirs
else:
    theirs = ours.iloc[0:0]
write_table(theirs, sm.output.imelt, {**prov, "model": "imelt.load_pretrained_bagged()"})
if sm.params.compare_imelt:
    rmse = comparison_table(preds, split="test", seed=int(sm.params.seed))
else:
    rmse = rmse_table(preds, split="test")
write_csv(rmse, sm.output.comparison, {**prov, "bootstrap_seed": int(sm.params.seed)}, float_format="%.5g")
log.info("test RMSE:\n%s", pd.DataFrame(rmse).to_string(index=False))
cover = uncertainty_table(ours, model.noise_models(), split="test")
write_csv(cover, sm.output.uncertainty, prov, float_format="%.4g")
log.info("test coverage of the predicted intervals:\n%s", cover.to_string(index=False))
domain = domain_table(preds, split="test")
write_csv(domain, sm.output.domain, prov, float_format="%.5g")
log.info("test RMSE inside / beyond the training data:\n%s", domain.to_string(index=False))
