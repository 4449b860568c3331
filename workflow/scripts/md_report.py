"""Report section 30: melt-quench traces, failures and the cost of the MD jobs."""


def main(smk) -> None:
    from vitriflow.md.report import md_section
    from vitriflow.runtime import script_logger

    log = script_logger("md_report", smk.log[0])
    md_section(smk.output[0], smk.params.systems, smk.input.summaries, smk.input.traces)
    log.info("wrote %s", smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
