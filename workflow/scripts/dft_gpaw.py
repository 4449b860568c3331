"""GPAW single points of one system's selection; threads = structures run side by side."""


def main(smk) -> None:
    from vitriflow.dft.stage import gpaw_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_gpaw", smk.log[0])
    gpaw_stage(smk.input.frames, smk.output.table, smk.params.workdir, smk.params.cfg, smk.threads)
    log.info("GPAW energies written to %s", smk.output.table)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
