"""Assemble the report sections into results/report/index.html (rule report)."""


def main(smk) -> None:
    from datetime import UTC, datetime

    from vitriflow.report import assemble
    from vitriflow.runtime import script_logger

    log = script_logger("report", smk.log[0])
    sections = list(smk.input.sections)
    assemble(sections, smk.output[0], smk.params.title,
             f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from {len(sections)} sections")
    log.info("wrote %s (%d sections)", smk.output[0], len(sections))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
