"""Snakemake adapter: rates for the configured compositions and pH values, ranges flagged."""

import json

from vitriflow.io import provenance, write_csv, write_table
from vitriflow.runtime import script_logger
from vitriflow.surrogates.dissolution import DissolutionDataError, predict_inputs

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("dissolution_predict", sm.log[0])
cfg = dict(sm.params.predict)
cards = json.loads(open(sm.input.models).read())["models"]
key = f"{cfg['model']}@{cfg['ph_measure']}"
if key not in cards:
    raise DissolutionDataError(
        f"dissolution.predict: model {cfg['model']!r} with ph_measure {cfg['ph_measure']!r} was not "
        f"fitted; available: {', '.join(cards)} (add it to dissolution.models / ph_measures)")
out = predict_inputs(cards[key], cfg.get("inputs", []))
prov = provenance(stage="dissolution", config=cfg, inputs=[sm.input.models], model=key,
                  training_range=cards[key]["training_range"])
write_table(out, sm.output.parquet, prov)
write_csv(out, sm.output.csv, prov, float_format="%.5g")
for r in out.to_dict("records"):
    log.info("%s pH %.2f: %s %s", r["label"], r["pH"], r["status"], r.get("log10_rate", ""))
