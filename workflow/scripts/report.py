"""Assemble the report sections into results/report/index.html."""

from datetime import UTC, datetime

from vitriflow.report import assemble
from vitriflow.runtime import script_logger

log = script_logger("report", snakemake.log[0])  # noqa: F821
sections = list(snakemake.input.sections)  # noqa: F821
assemble(sections, snakemake.output[0], snakemake.params.title,  # noqa: F821
         f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from {len(sections)} sections")
log.info("wrote %s (%d sections)", snakemake.output[0], len(sections))  # noqa: F821
