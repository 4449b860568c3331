"""Write report section 60: the surrogate against the pretrained i-Melt ensemble."""
import json

from vitriflow.io import read_csv, read_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
from vitriflow.surrogates.viscosity.evaluate import IMELT_REPORTED
from vitriflow.surrogates.viscosity.report import write_report


def main(smk):
    log = script_logger("viscosity", smk.log[0])
    preds = {"vitriflow": read_table(smk.input.vitriflow)[0]}
    imelt_model = None
    if smk.params.compare_imelt:
        import imelt

        preds["i-Melt"] = read_table(smk.input.imelt)[0]
        imelt_model = imelt.load_pretrained_bagged()
    with open(smk.input.training) as fh, open(smk.input.ingest) as gh:
        training, ingest = json.load(fh), json.load(gh)
    write_report(smk.output.html, title="Melt viscosity & glass properties (vs i-Melt)",
                 rmse=read_csv(smk.input.comparison)[0], preds=preds,
                 table=read_table(smk.input.table)[0],
                 model=ViscositySurrogate.load(smk.input.model),
                 training=training, ingest=ingest, rejected=read_table(smk.input.rejected)[0],
                 imelt_model=imelt_model, reported=IMELT_REPORTED,
                 predictions=read_table(smk.input.predictions)[0],
                 uncertainty=read_csv(smk.input.uncertainty)[0],
                 domain=read_csv(smk.input.domain)[0], bias=read_csv(smk.input.bias)[0],
                 coverage=read_csv(smk.input.coverage)[0])
    log.info("wrote %s", smk.output.html)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
