"""Snakemake adapter: MLIP single points on the selected frames."""
import torch

from vitriflow.dft.stage import mlip_stage
from vitriflow.runtime import pick_device, script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_mlip", sm.log[0])
torch.set_num_threads(sm.threads)
mlip_stage(sm.input.frames, sm.output.table, sm.params.cfg, pick_device(sm.params.cfg["device"]))
log.info("MLIP energies written to %s", sm.output.table)
