"""Snakemake adapter: parse vasprun.xml files (pymatgen Vasprun, MP2020 corrections)."""
from vitriflow.dft.stage import vasp_parse_stage
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821
log = script_logger("dft_vasp_parse", sm.log[0])
vasp_parse_stage(sm.input.runs, sm.output.table, sm.params.root, sm.params.cfg)
log.info("VASP energies written to %s", sm.output.table)
