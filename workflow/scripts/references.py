"""Reference crystals (volume per atom, hull decomposition, formation energy) per composition."""

from vitriflow.io import provenance, write_structures, write_table
from vitriflow.references import ReferenceError, load_snapshot_index, serve_references
from vitriflow.runtime import script_logger

log = script_logger("references", snakemake.log[0])  # noqa: F821
spec, cfg = snakemake.params.spec, snakemake.params.refs  # noqa: F821
index, version = load_snapshot_index(snakemake.input.index)  # noqa: F821
try:
    table, crystals = serve_references(
        spec.compositions(), source=cfg["source"], snapshot=index, snapshot_version=version,
        e_above_hull_max=cfg["e_above_hull_max_eV"], on_missing_snapshot=cfg["on_missing_snapshot"],
    )
except ReferenceError as exc:  # a forced source that cannot serve: one line naming the key, no traceback
    log.error("%s", exc)
    raise SystemExit(f"vitriflow references error: {exc}") from None
for source, n in table["source"].value_counts().items():
    log.info("%s: %d compositions served by %s", spec.name, n, source)
write_structures(crystals, snakemake.output.crystals)  # noqa: F821
write_table(table, snakemake.output.table,  # noqa: F821
            provenance(stage="references", inputs=[snakemake.input.index],  # noqa: F821
                       sources=sorted(table["source"].unique())))
