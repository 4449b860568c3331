"""Rates for the configured compositions and pH values, out-of-range inputs flagged."""
from vitriflow.runtime import script_logger


def main(smk):
    log = script_logger("dissolution", smk.log[0])
    from vitriflow.io import provenance, write_csv, write_table
    from vitriflow.surrogates.dissolution.predict import card_for, predict_inputs, read_model_cards

    cfg = smk.params.predict
    card = card_for(read_model_cards(smk.input.models), cfg["model"], cfg["ph_measure"],
                    smk.input.models)
    out = predict_inputs(card, cfg["inputs"])
    prov = provenance(stage="dissolution", config=cfg, inputs=[smk.input.models],
                      model=f"{cfg['model']}@{cfg['ph_measure']}",
                      training_range=card["training_range"])
    write_table(out, smk.output.parquet, prov)
    write_csv(out, smk.output.csv, prov, float_format="%.5g")
    for r in out.to_dict("records"):
        log.info("%s pH %.2f: %s %s", r["label"], r["pH"], r["status"], r.get("log10_rate", ""))


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
