"""Read the i-Melt database and user CSVs into the validated tidy table and the Raman table."""
from vitriflow.io import provenance, write_json, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.viscosity.data import ingest, ingest_raman


def main(smk):
    log = script_logger("viscosity", smk.log[0])
    user = list(smk.input.user) if "user" in smk.input.keys() else []
    good, rejected, info = ingest(user_csvs=user)
    raman, raman_rejected, raman_info = ingest_raman()
    prov = provenance(stage="viscosity_ingest", inputs=user, **info)
    write_table(good, smk.output.table, prov)
    write_table(rejected, smk.output.rejected, prov)
    raman_prov = provenance(stage="viscosity_ingest", inputs=[], **raman_info)
    write_table(raman, smk.output.raman, raman_prov)
    write_table(raman_rejected, smk.output.raman_rejected, raman_prov)
    write_json({**info, "raman": raman_info}, smk.output.summary)
    reasons = rejected.drop_duplicates(["property", "reason"])
    log.info("%d rows kept, %d rejected (%s)", len(good), len(rejected),
             ", ".join(f"{r.property}: {r.reason}" for r in reasons.itertuples()))
    log.info("Raman: %d spectra kept %s, %d rejected", raman["spectrum_id"].nunique(),
             raman_info["counts"], len(raman_rejected))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
