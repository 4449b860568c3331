"""Elemental reference energies with the system's own potential (MLIPs only)."""

import torch

from vitriflow.io import read_structures, write_json
from vitriflow.md_refs import elemental_reference_energies
from vitriflow.runtime import pick_device, script_logger

log = script_logger("elemental_refs", snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
crystals = read_structures(snakemake.input.crystals)  # noqa: F821
result = elemental_reference_energies(
    crystals, p.spec.potential, device=pick_device(p.device),
    dtype=torch.float64 if p.dtype == "float64" else torch.float32,
)
log.info("%s (%s): %s", p.spec.name, p.spec.potential, result["reason"] or result["energies_per_atom"])
write_json(result, snakemake.output[0])  # noqa: F821
