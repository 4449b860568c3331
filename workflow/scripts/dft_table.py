"""Validate a user-supplied DFT energy table against the selection (rule dft_table)."""


def main(smk) -> None:
    from vitriflow.dft.stage import table_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_table", smk.log[0])
    table_stage(smk.input.selection, smk.output.table, smk.params.cfg)
    log.info("table energies written to %s", smk.output.table)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
