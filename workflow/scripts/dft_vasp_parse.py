"""Parse vasprun.xml files with pymatgen (MP2020 corrections) (rule dft_vasp_parse)."""


def main(smk) -> None:
    from vitriflow.dft.stage import vasp_parse_stage
    from vitriflow.runtime import script_logger

    log = script_logger("dft_vasp_parse", smk.log[0])
    vasp_parse_stage(smk.input.runs, smk.output.table, smk.params.root, smk.params.cfg)
    log.info("VASP energies written to %s", smk.output.table)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
