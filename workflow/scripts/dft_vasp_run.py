"""Run ${VASP_COMMAND} in each job directory (rule dft_vasp_run, cluster profile)."""


def main(smk) -> None:
    from vitriflow.dft.stage import vasp_run_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_vasp_run", smk.log[0])
    vasp_run_stage(smk.input.jobs, smk.output.runs, smk.params.root, smk.params.cfg)
    log.info("VASP runs recorded in %s", smk.output.runs)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
