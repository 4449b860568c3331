# vitriflow: composition -> amorphous structures -> MD -> analysis -> DFT / surrogates -> report.
# Thin by design: configuration and targets live in workflow/rules/common.smk, logic in src/vitriflow.
from snakemake.utils import min_version

min_version("9.0")


# The embedded demo is the default; a --configfile replaces it rather than merging into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/references.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/properties.smk"
include: "workflow/rules/dft.smk"
include: "workflow/rules/forcefield_fit.smk"
include: "workflow/rules/pcf.smk"
include: "workflow/rules/gnn.smk"
include: "workflow/rules/viscosity.smk"
include: "workflow/rules/dissolution.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report/index.html",
        STAGE_TARGETS,
    default_target: True
