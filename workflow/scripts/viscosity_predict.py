"""Snakemake adapter: properties for the configured compositions x temperatures."""

from vitriflow.io import provenance, write_csv, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity import MeltSurrogate, predict_compositions

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_predict", sm.log[0])
cfg = dict(sm.params.predict)
out = predict_compositions(MeltSurrogate.load(sm.input.model), cfg.get("compositions", []),
                           cfg.get("temperatures_K", []), cfg.get("wavelength_um", 0.5893))
if not len(out):
    log.info("viscosity.predict.compositions is empty: writing an empty table")
prov = provenance(stage="viscosity_predict", config=cfg, inputs=[sm.input.model])
write_table(out, sm.output.parquet, prov)
write_csv(out, sm.output.csv, prov, float_format="%.6g")
log.info("%d predictions written", len(out))
