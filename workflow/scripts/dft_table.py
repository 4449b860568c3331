"""Snakemake adapter: validate a user-supplied DFT energy table against the selection."""
from vitriflow.dft.stage import table_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_table", sm.log[0])
table_stage(sm.input.selection, sm.output.table, sm.params.cfg)
log.info("table energies written to %s", sm.output.table)
