"""Mean-square displacement and self-diffusion in the melt (and Green-Kubo viscosity for
classical potentials) of one system's glasses; resumable (rule properties_transport)."""


def main(smk) -> None:
    from vitriflow.io import provenance, read_structures, write_table
    from vitriflow.md import Protocol
    from vitriflow.potentials import is_mlip
    from vitriflow.properties.stage import transport_job
    from vitriflow.runtime import load_system_model, script_logger

    log = script_logger("properties", smk.log[0])
    p = smk.params
    structures = read_structures(smk.input.structures)
    model, device = load_system_model(p.spec, p.device, p.dtype, smk.threads)
    green_kubo = bool(p.cfg["green_kubo"]["enabled"]) and not is_mlip(p.spec.potential)
    rows, msd = transport_job(structures, model, p.cfg, Protocol.from_config(p.protocol),
                              p.checkpoint_dir, device, green_kubo)
    prov = provenance(stage="properties.transport", inputs=[smk.input.structures], config=p.cfg,
                      potential=p.spec.potential, device=device)
    write_table(rows, smk.output.transport, prov)
    write_table(msd, smk.output.msd, prov)
    log.info("%s: transport of %d structures", p.spec.name, len(rows))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
