"""Random packing of every (composition, replica) of a system at the target density."""

from vitriflow.io import provenance, read_table, write_structures, write_table
from vitriflow.runtime import script_logger
from vitriflow.structures import build_structures

log = script_logger("structures", snakemake.log[0])  # noqa: F821
refs, _ = read_table(snakemake.input.refs)  # noqa: F821
atoms, compositions = build_structures(
    snakemake.params.spec, refs, snakemake.params.packing, snakemake.params.seed  # noqa: F821
)
log.info("%s: packed %d cells for %d compositions", snakemake.params.spec.name,  # noqa: F821
         len(atoms), len(compositions))
write_structures(atoms, snakemake.output.structures)  # noqa: F821
write_table(compositions, snakemake.output.compositions,  # noqa: F821
            provenance(stage="structures", inputs=[snakemake.input.refs],  # noqa: F821
                       seed=snakemake.params.seed, packing=snakemake.params.packing))  # noqa: F821
