"""Snakemake adapter: GPAW cutoff / k-point convergence of a formation energy."""
from vitriflow.dft.stage import gpaw_convergence_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_gpaw_convergence", sm.log[0])
gpaw_convergence_stage(sm.input.frames, sm.output.table, sm.params.workdir, sm.params.cfg, sm.threads)
log.info("convergence check written to %s", sm.output.table)
