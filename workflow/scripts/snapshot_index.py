"""Index the Materials Project snapshot once per run (structures, volumes, formation energies)."""

from vitriflow.io import provenance, write_table
from vitriflow.references import ReferenceError, index_snapshot
from vitriflow.runtime import script_logger

log = script_logger("snapshot_index", snakemake.log[0])  # noqa: F821
p = snakemake.params  # noqa: F821
try:
    table, checksums, note = index_snapshot(p.snapshot_dir, p.source, p.on_missing_snapshot)
except ReferenceError as exc:  # the folder changed after the start-up check: one line, no traceback
    log.error("%s", exc)
    raise SystemExit(f"vitriflow references error: {exc}") from None
if checksums:
    log.info("indexed %d crystals from %s", len(table), p.snapshot_dir)
elif p.source in ("auto", "snapshot"):
    log.warning(note)  # a fallback: say so
else:
    log.info(note)
write_table(table, snakemake.output[0],  # noqa: F821
            provenance(stage="snapshot_index", snapshot_checksums=checksums, note=note))
