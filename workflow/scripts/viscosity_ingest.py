"""Snakemake adapter: i-Melt HDF5 (+ user CSVs) -> validated tidy Parquet and rejected rows;
the Raman spectra to their own long table."""

from vitriflow.ingest.imelt_data import ingest, ingest_raman
from vitriflow.io import provenance, write_json, write_table
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("viscosity_ingest", sm.log[0])
user = list(sm.input.user) if "user" in sm.input.keys() else []
good, rejected, info = ingest(user_csvs=user)
raman, raman_rejected, raman_info = ingest_raman()
prov = provenance(stage="viscosity_ingest", inputs=user, **info)
write_table(good, sm.output.table, prov)
write_table(rejected, sm.output.rejected, prov)
raman_prov = provenance(stage="viscosity_ingest", inputs=[], **raman_info)
write_table(raman, sm.output.raman, raman_prov)
write_table(raman_rejected, sm.output.raman_rejected, raman_prov)
write_json({**info, "raman": raman_info}, sm.output.summary)
log.info("%d rows kept, %d rejected (%s)", len(good), len(rejected),
         ", ".join(f"{r.property}: {r.reason}" for r in rejected.drop_duplicates(["property", "reason"]).itertuples()))
log.info("Raman: %d spectra kept %s, %d rejected", raman["spectrum_id"].nunique(), raman_info["counts"],
         len(raman_rejected))
