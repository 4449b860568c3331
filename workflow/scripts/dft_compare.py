"""MLIP vs DFT comparison over all systems, and the report fragment (rule dft_compare)."""


def main(smk) -> None:
    from vitriflow.dft.stage import compare_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_compare", smk.log[0])
    compare_stage(smk.params.systems, smk.input.selection, smk.input.mlip, smk.input.dft,
                  smk.output.table, smk.output.summary, smk.output.section, smk.params.cfg,
                  smk.params.seed, convergence_paths=list(smk.input.convergence))
    log.info("DFT comparison written to %s", smk.output.section)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
