"""Snakemake adapter: fit and evaluate the dissolution models (protocols a and b)."""

import pandas as pd

from vitriflow.io import provenance, write_json, write_table
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
res["summary"].to_csv(sm.output.summary_csv, index=False, float_format="%.4g")
with open(sm.output.summary_md, "w") as fh:
    fh.write(markdown_table(res["summary"]))
write_json({"provenance": prov, "models": res["cards"]}, sm.output.models)
for r in res["summary"].to_dict("records"):
    log.info("%s (%s pH): grouped RRMSE %.2f +/- %.2f %%, A->B %s", r["model"], r["ph_measure"],
             r["grouped_rrmse_pct"], r["grouped_rrmse_sd_pct"],
             {k: round(v, 2) for k, v in r.items() if k.startswith("AB_") and k.endswith("rrmse_pct")})
