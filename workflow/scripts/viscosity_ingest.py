"""Snakemake adapter: i-Melt HDF5 (+ user CSVs) -> validated tidy Parquet and rejected rows."""

from vitriflow.ingest.imelt_data import ingest
from vitriflow.io import provenance, write_json, write_table
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_ingest", sm.log[0])
user = list(sm.input.user) if "user" in sm.input.keys() else []
good, rejected, info = ingest(user_csvs=user)
prov = provenance(stage="viscosity_ingest", inputs=user, **info)
write_table(good, sm.output.table, prov)
write_table(rejected, sm.output.rejected, prov)
write_json(info, sm.output.summary)
log.info("%d rows kept, %d rejected (%s)", len(good), len(rejected),
         ", ".join(f"{r.property}: {r.reason}" for r in rejected.drop_duplicates(["property", "reason"]).itertuples()))
