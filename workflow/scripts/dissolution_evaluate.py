"""Fit and evaluate the dissolution models (protocols a and b); write what the report draws."""
from vitriflow.runtime import script_logger


def main(smk):
    log = script_logger("dissolution", smk.log[0])
    from vitriflow.io import (
        provenance,
        provenance_comment,
        write_csv,
        write_json,
        write_table,
        write_text,
    )
    from vitriflow.surrogates.dissolution.evaluate import TABLES, markdown_table, run_evaluation

    cfg, table = smk.params.cfg, smk.input.table
    res = run_evaluation(table, cfg)
    prov = provenance(stage="dissolution", config=cfg, inputs=[table], seed=cfg["seed"],
                      rate_unit="log10 mol SiO2 cm^-2 s^-1",
                      rrmse="RMSE / |mean measured log10 rate| (Liu thesis Eq. 5-1)")
    for name in TABLES:
        write_table(res[name], smk.output[name], prov)
    write_csv(res["summary"], smk.output.summary_csv, prov, float_format="%.4g")
    write_text(markdown_table(res["summary"]) + provenance_comment(prov), smk.output.summary_md)
    write_json({"provenance": prov, "models": res["cards"]}, smk.output.models)
    for r in res["summary"].to_dict("records"):
        ab = {k: round(v, 2) for k, v in r.items()
              if k.startswith("AB_") and k.endswith("rrmse_pct")}
        log.info("%s (%s pH): grouped RRMSE %.2f +/- %.2f %% over %d splits, A->B %s", r["model"],
                 r["ph_measure"], r["grouped_rrmse_pct"], r["grouped_rrmse_sd_pct"],
                 r["grouped_splits"], ab)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
