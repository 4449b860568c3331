"""Report sections 00 (run summary, provenance) and 30 (MD traces, failures)."""

from vitriflow.overview import md_section, summary_section
from vitriflow.runtime import script_logger

log = script_logger("report_overview", snakemake.log[0])  # noqa: F821
i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
summary_section(o.summary, p.systems, i.references, i.compositions, i.summaries, p.config)
md_section(o.md, p.systems, i.summaries, i.traces)
log.info("wrote %s and %s", o.summary, o.md)
