"""Elemental reference energies of one potential (MLIPs only), from the snapshot's elemental
phases (rule elemental_references)."""


def main(smk) -> None:
    import torch

    from vitriflow.io import provenance, write_json
    from vitriflow.md.elemental_refs import elemental_crystals, elemental_reference_energies
    from vitriflow.references import load_snapshot_index
    from vitriflow.runtime import pick_device, script_logger

    log = script_logger("elemental_refs", smk.log[0])
    p, potential = smk.params, smk.wildcards.potential
    index, _, _ = load_snapshot_index(smk.input.index)
    result = elemental_reference_energies(
        elemental_crystals(index, p.elements), potential, device=pick_device(p.device),
        dtype=torch.float64 if p.dtype == "float64" else torch.float32,
    )
    log.info("%s: %s", potential, result["reason"] or result["energies_per_atom"])
    result["provenance"] = provenance(stage="md.elemental_refs", inputs=[smk.input.index],
                                      elements=sorted(p.elements), device=p.device, dtype=p.dtype)
    write_json(result, smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
