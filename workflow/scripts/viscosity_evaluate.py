"""Score the surrogate and the pretrained i-Melt ensemble on the same valid/test rows."""
import torch

from vitriflow.io import provenance, read_table, write_csv, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
from vitriflow.surrogates.viscosity.evaluate import evaluate_model


def main(smk):
    log = script_logger("viscosity", smk.log[0])
    torch.set_num_threads(int(smk.threads))
    table, _ = read_table(smk.input.table)
    model = ViscositySurrogate.load(smk.input.model)
    out = evaluate_model(model, table, compare_imelt=bool(smk.params.compare_imelt),
                         seed=int(smk.params.seed), oof=read_table(smk.input.cv)[0])
    prov = provenance(stage="viscosity_evaluate",
                      inputs=[smk.input.table, smk.input.model, smk.input.cv])
    write_table(out["vitriflow"], smk.output.vitriflow, prov)
    write_table(out["imelt"], smk.output.imelt, {**prov, "model": "imelt.load_pretrained_bagged()"})
    write_csv(out["comparison"], smk.output.comparison,
              {**prov, "bootstrap_seed": int(smk.params.seed)}, float_format="%.5g")
    write_csv(out["uncertainty"], smk.output.uncertainty, prov, float_format="%.4g")
    write_csv(out["domain"], smk.output.domain, prov, float_format="%.5g")
    write_csv(out["bias"], smk.output.bias, prov, float_format="%.5g")
    write_csv(out["coverage"], smk.output.coverage, prov, float_format="%.4g")
    log.info("test RMSE:\n%s", out["comparison"].to_string(index=False))
    log.info("test coverage of the predicted intervals:\n%s",
             out["uncertainty"].to_string(index=False))
    log.info("test RMSE inside / beyond the training data:\n%s",
             out["domain"].to_string(index=False))
    log.info("bias (prediction - measurement):\n%s", out["bias"].to_string(index=False))
    log.info("coverage of the 95 %% intervals by distance to the training melts:\n%s",
             out["coverage"].to_string(index=False))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
