"""Snakemake adapter: pick the structures of one system for DFT."""
from vitriflow.dft.stage import select_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_select", sm.log[0])
select_stage(sm.wildcards.system, sm.input.quenched, sm.input.references, sm.input.crystals,
             sm.output.frames, sm.output.table, sm.params.cfg, sm.params.seed)
log.info("selection of %s written", sm.wildcards.system)
