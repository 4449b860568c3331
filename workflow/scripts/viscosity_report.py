"""Snakemake adapter: report section 60_viscosity."""

import json

from vitriflow.io import read_csv, read_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.melt.report import write_report
from vitriflow.surrogates.viscosity import IMELT_REPORTED, MeltSurrogate

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_report", sm.log[0])
table, _ = read_table(sm.input.table)
rejected, _ = read_table(sm.input.rejected)
preds = {"vitriflow": read_table(sm.input.vitriflow)[0]}
imelt_model = None
if sm.params.compare_imelt:
    import imelt

    preds["i-Melt"] = read_table(sm.input.imelt)[0]
    imelt_model = imelt.load_pretrained_bagged()
write_report(sm.output.html, title="Melt viscosity & glass properties (vs i-Melt)",
             rmse=read_csv(sm.input.comparison)[0], preds=preds, table=table,
             model=MeltSurrogate.load(sm.input.model),
             training=json.loads(open(sm.input.training).read()),
             ingest=json.loads(open(sm.input.ingest).read()), rejected=rejected,
             imelt_model=imelt_model, reported=IMELT_REPORTED,
             predictions=read_table(sm.input.predictions)[0],
             uncertainty=read_csv(sm.input.uncertainty)[0], domain=read_csv(sm.input.domain)[0])
log.info("wrote %s", sm.output.html)
