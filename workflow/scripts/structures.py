"""Random packing of every (composition, replica) of a system at its target density
(rule structures)."""


def main(smk) -> None:
    from vitriflow.io import provenance, read_table, write_structures, write_table
    from vitriflow.runtime import script_logger
    from vitriflow.structures.build import build_structures

    log = script_logger("structures", smk.log[0])
    refs, _ = read_table(smk.input.refs)
    atoms, compositions = build_structures(smk.params.spec, refs, smk.params.packing,
                                           smk.params.seed)
    log.info("%s: packed %d cells for %d compositions", smk.params.spec.name, len(atoms),
             len(compositions))
    write_structures(atoms, smk.output.structures)
    write_table(compositions, smk.output.compositions,
                provenance(stage="structures", inputs=[smk.input.refs], seed=smk.params.seed,
                           packing=smk.params.packing))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
