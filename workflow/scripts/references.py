"""Reference crystals (volume per atom, hull decomposition, formation energy) per composition
of one system (rule references)."""


def main(smk) -> None:
    from vitriflow.io import provenance, write_structures, write_table
    from vitriflow.references import ReferenceError, load_snapshot_index, serve_references
    from vitriflow.runtime import script_logger

    log = script_logger("references", smk.log[0])
    spec, cfg = smk.params.spec, smk.params.refs
    index, version, label = load_snapshot_index(smk.input.index)
    try:
        table, crystals = serve_references(
            spec.compositions(), source=cfg["source"], snapshot=index, snapshot_version=version,
            e_above_hull_max=cfg["e_above_hull_max_eV"], snapshot_label=label,
        )
    except ReferenceError as exc:  # a forced source that cannot serve: one line, no traceback
        log.error("%s", exc)
        raise SystemExit(f"vitriflow references error: {exc}") from None
    for source, n in table["source"].value_counts().items():
        log.info("%s: %d compositions served by %s", spec.name, n, source)
    write_structures(crystals, smk.output.crystals)
    write_table(table, smk.output.table,
                provenance(stage="references", inputs=[smk.input.index],
                           sources=sorted(table["source"].unique())))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
