# vitriflow: composition -> amorphous structures -> MD -> analysis -> DFT / surrogates -> report.
# Thin by design: configuration and targets live in workflow/rules/common.smk, logic in src/vitriflow.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/references.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report/index.html",
        STAGE_TARGETS,
    default_target: True
