"""Index the Materials Project snapshot once per run (rule snapshot_index)."""


def main(smk) -> None:
    from vitriflow.io import provenance, write_table
    from vitriflow.references import ReferenceError, index_snapshot
    from vitriflow.runtime import script_logger

    log = script_logger("snapshot_index", smk.log[0])
    p = smk.params
    try:
        table, checksums, note = index_snapshot(p.snapshot_dir, p.source, p.on_missing_snapshot)
    except ReferenceError as exc:  # the folder changed after the start-up check: one line
        log.error("%s", exc)
        raise SystemExit(f"vitriflow references error: {exc}") from None
    if checksums:
        log.info("indexed %d crystals from %s", len(table), p.snapshot_dir)
    elif p.source in ("auto", "snapshot"):
        log.warning(note)  # a fallback: say so
    else:
        log.info(note)
    write_table(table, smk.output[0],
                provenance(stage="snapshot_index", snapshot_checksums=checksums, note=note))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
