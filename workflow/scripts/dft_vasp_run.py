"""Snakemake adapter: run ${VASP_COMMAND} in each job directory (cluster profile)."""
from vitriflow.dft.stage import vasp_run_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_vasp_run", sm.log[0])
vasp_run_stage(sm.input.jobs, sm.output.runs, sm.params.root, sm.params.cfg)
log.info("VASP runs recorded in %s", sm.output.runs)
