"""Elemental reference energies with one potential (MLIPs only), from the snapshot's elemental phases."""

import torch

from vitriflow.io import provenance, write_json
from vitriflow.md_refs import elemental_crystals, elemental_reference_energies
from vitriflow.references import load_snapshot_index
from vitriflow.runtime import pick_device, script_logger

log = script_logger("elemental_refs", snakemake.log[0])  # noqa: F821
p, wc = snakemake.params, snakemake.wildcards  # noqa: F821
index, _ = load_snapshot_index(snakemake.input.index)  # noqa: F821
result = elemental_reference_energies(
    elemental_crystals(index, p.elements), wc.potential, device=pick_device(p.device),
    dtype=torch.float64 if p.dtype == "float64" else torch.float32,
)
log.info("%s: %s", wc.potential, result["reason"] or result["energies_per_atom"])
result["provenance"] = provenance(stage="md.elemental_refs", inputs=[snakemake.input.index],  # noqa: F821
                                  elements=sorted(p.elements), device=p.device, dtype=p.dtype)
write_json(result, snakemake.output[0])  # noqa: F821
