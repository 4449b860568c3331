"""Predict every property for the configured compositions and temperatures."""
from vitriflow.io import provenance, write_csv, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
from vitriflow.surrogates.viscosity.predict import predict_compositions


def main(smk):
    log = script_logger("viscosity", smk.log[0])
    cfg = smk.params.predict
    out = predict_compositions(ViscositySurrogate.load(smk.input.model), cfg["compositions"],
                               cfg["temperatures_K"], cfg["wavelength_um"])
    if not len(out):
        log.info("viscosity.predict.compositions is empty: writing an empty table")
    prov = provenance(stage="viscosity_predict", config=cfg, inputs=[smk.input.model])
    write_table(out, smk.output.parquet, prov)
    write_csv(out, smk.output.csv, prov, float_format="%.6g")
    log.info("%d predictions written", len(out))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
