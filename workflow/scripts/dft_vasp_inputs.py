"""Snakemake adapter: one MP-input-set VASP job directory per selected structure."""
from vitriflow.dft.stage import vasp_inputs_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_vasp_inputs", sm.log[0])
vasp_inputs_stage(sm.input.frames, sm.output.jobs, sm.params.root, sm.params.cfg)
log.info("VASP inputs written under %s", sm.params.root)
