"""Snakemake adapter: GPAW single points of one system (threads = structures run side by side)."""
from vitriflow.dft.stage import gpaw_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_gpaw", sm.log[0])
gpaw_stage(sm.input.frames, sm.output.table, sm.params.workdir, sm.params.cfg, sm.threads)
log.info("GPAW energies written to %s", sm.output.table)
