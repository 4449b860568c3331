"""One MP-input-set VASP job directory per selected structure (rule dft_vasp_inputs)."""


def main(smk) -> None:
    from vitriflow.dft.stage import vasp_inputs_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_vasp_inputs", smk.log[0])
    vasp_inputs_stage(smk.input.frames, smk.output.jobs, smk.params.root, smk.params.cfg)
    log.info("VASP inputs written under %s", smk.params.root)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
