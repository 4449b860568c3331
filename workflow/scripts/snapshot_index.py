"""Index the Materials Project references once per run: the registry's full snapshot, or the
shipped subset when the snapshot is not available or not asked for (rule snapshot_index)."""


def main(smk) -> None:
    from vitriflow.io import provenance, write_table
    from vitriflow.references import index_snapshot
    from vitriflow.runtime import script_logger

    log = script_logger("snapshot_index", smk.log[0])
    files, note = smk.params.files, smk.params.note
    table, prov = index_snapshot(dict(files) if files else None, note)
    if files:
        log.info("indexed %d crystals of the Materials Project snapshot (%s)", len(table), note)
    else:
        log.warning("using the shipped Materials Project subset (%d crystals): %s",
                    len(table), note)
    write_table(table, smk.output[0],
                provenance(stage="snapshot_index", inputs=list(smk.input), **prov))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
