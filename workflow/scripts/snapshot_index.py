"""Index the Materials Project snapshot once per run (structures, volumes, formation energies)."""

from pathlib import Path

import pandas as pd

from vitriflow.io import provenance, write_table
from vitriflow.references import build_snapshot_index
from vitriflow.runtime import script_logger

log = script_logger("snapshot_index", snakemake.log[0])  # noqa: F821
snap = snakemake.params.snapshot_dir  # noqa: F821
if snap and Path(snap).is_dir() and snakemake.params.source in ("auto", "snapshot"):  # noqa: F821
    table, checksums = build_snapshot_index(snap)
    log.info("indexed %d crystals from %s", len(table), snap)
    note = f"snapshot {snap}"
else:
    table, checksums = pd.DataFrame({"material_id": pd.Series(dtype=str)}), {}
    note = "no snapshot configured or folder absent: references fall back to estimates"
    log.warning(note)
write_table(table, snakemake.output[0],  # noqa: F821
            provenance(stage="snapshot_index", snapshot_checksums=checksums, note=note))
