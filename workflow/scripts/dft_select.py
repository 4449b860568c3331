"""Pick the structures of one system for DFT (rule dft_select)."""


def main(smk) -> None:
    from vitriflow.dft.stage import select_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_select", smk.log[0])
    select_stage(smk.wildcards.system, smk.input.quenched, smk.input.references,
                 smk.input.crystals, smk.output.frames, smk.output.table, smk.params.cfg,
                 smk.params.seed)
    log.info("selection of %s written", smk.wildcards.system)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
