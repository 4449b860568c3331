"""Report section 00: the run summary (systems, structures, reference sources, provenance)."""


def main(smk) -> None:
    from vitriflow.runtime import script_logger
    from vitriflow.structures.report import summary_section

    log = script_logger("structures_report", smk.log[0])
    i = smk.input
    summary_section(smk.output[0], smk.params.systems, i.references, i.compositions, i.summaries,
                    smk.params.config)
    log.info("wrote %s", smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
