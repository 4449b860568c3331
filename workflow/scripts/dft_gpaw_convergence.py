"""GPAW cutoff / k-point convergence of a formation energy (rule dft_gpaw_convergence)."""


def main(smk) -> None:
    from vitriflow.dft.stage import gpaw_convergence_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_gpaw_convergence", smk.log[0])
    gpaw_convergence_stage(smk.input.frames, smk.output.table, smk.params.workdir, smk.params.cfg,
                           smk.threads)
    log.info("convergence check written to %s", smk.output.table)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
