"""Snakemake adapter: fit and evaluate the dissolution models (protocols a and b)."""

import pandas as pd

from vitriflow.io import (
    provenance,
    provenance_comment,
    write_csv,
    write_json,
    write_table,
    write_text,
)
from vitriflow.runtime import script_logger
from vitriflow.surrogates.dissolution import markdown_table, run_evaluation

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("dissolution_evaluate", sm.log[0])
cfg = dict(sm.params.cfg)
table = sm.input.table
res = run_evaluation(table, cfg)
prov = provenance(stage="dissolution", config=cfg, inputs=[table], seed=cfg.get("seed", 0),
                  rate_unit="log10 mol SiO2 cm^-2 s^-1",
                  rrmse="RMSE / |mean measured log10 rate| (Liu thesis Eq. 5-1)")
descriptors = pd.concat([f.assign(ph_measure=k) for k, f in res["frames"].items()], ignore_index=True)
write_table(descriptors, sm.output.descriptors, prov)
write_table(res["scores"], sm.output.scores, prov)
write_table(res["curves"], sm.output.curves, prov)
write_table(res["extrapolation_predictions"], sm.output.extrapolation, prov)
write_table(res["coefficients"], sm.output.coefficients, prov)
write_csv(res["summary"], sm.output.summary_csv, prov, float_format="%.4g")
write_text(markdown_table(res["summary"]) + provenance_comment(prov), sm.output.summary_md)
write_json({"provenance": prov, "models": res["cards"]}, sm.output.models)
for r in res["summary"].to_dict("records"):
    log.info("%s (%s pH): grouped RRMSE %.2f +/- %.2f %% over %d splits, A->B %s", r["model"], r["ph_measure"],
             r["grouped_rrmse_pct"], r["grouped_rrmse_sd_pct"], r["grouped_splits"],
             {k: round(v, 2) for k, v in r.items() if k.startswith("AB_") and k.endswith("rrmse_pct")})
