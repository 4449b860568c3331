"""Network structure (Qn, oxygen speciation, NBO/T, rings) and X-ray S(Q) of one system's
glasses (rule properties_network)."""


def main(smk) -> None:
    from vitriflow.io import provenance, read_structures, write_table
    from vitriflow.properties.stage import network_job
    from vitriflow.runtime import script_logger

    log = script_logger("properties", smk.log[0])
    structures = read_structures(smk.input.structures)
    if not smk.params.xray:
        log.warning("no X-ray S(Q): %s", smk.params.xray_reason)
    tables = network_job(structures, smk.params.cfg, smk.params.analysis, smk.params.xray)
    prov = provenance(stage="properties.network", inputs=list(smk.input), config=smk.params.cfg,
                      xray_form_factors=smk.params.xray or smk.params.xray_reason)
    for name, df in tables.items():
        write_table(df, smk.output[name], prov)
    net = tables["network"]
    log.info("%s: network of %d structures (%d ok)", smk.wildcards.system, len(net),
             int((net["status"] == "ok").sum()) if len(net) else 0)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
