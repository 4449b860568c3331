"""Snakemake adapter: MLIP vs DFT comparison over all systems and the report fragment."""
from vitriflow.dft.stage import compare_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_compare", sm.log[0])
compare_stage(sm.params.systems, sm.input.selection, sm.input.mlip, sm.input.dft, sm.output.table,
              sm.output.summary, sm.output.section, sm.params.cfg, sm.params.seed,
              convergence_paths=list(sm.input.convergence))
log.info("DFT comparison written to %s", sm.output.section)
