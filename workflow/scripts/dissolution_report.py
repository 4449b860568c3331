"""Snakemake adapter: the dissolution report section (or a note saying why it was skipped)."""

import json

from vitriflow.io import read_table
from vitriflow.report import headline, note_html, write_section
from vitriflow.runtime import script_logger

sm = snakemake  # noqa: F821 (injected by Snakemake)
log = script_logger("dissolution_report", sm.log[0])
title = "Dissolution kinetics (topology-informed models)"
if sm.params.get("skip_reason"):
    log.info("skipped: %s", sm.params.skip_reason)
    write_section(sm.output.html, title, note_html(f"Stage skipped: {sm.params.skip_reason}"),
                  headlines=[headline("Dissolution models", "skipped", sm.params.skip_reason)])
else:
    from vitriflow.surrogates.dissolution import (
        headline_card,
        report_parts,
        resolve_models,
        summary_table,
    )

    cfg = dict(sm.params.cfg)
    desc = read_table(sm.input.descriptors)[0]
    scores = read_table(sm.input.scores)[0]
    res = {
        "frames": {k: f.drop(columns="ph_measure").reset_index(drop=True)
                   for k, f in desc.groupby("ph_measure", sort=False)},
        "scores": scores,
        "summary": summary_table(scores, cfg.get("target_rrmse_pct", 3.76)),
        "curves": read_table(sm.input.curves)[0],
        "extrapolation_predictions": read_table(sm.input.extrapolation)[0],
        "coefficients": read_table(sm.input.coefficients)[0],
        "cards": json.loads(open(sm.input.models).read())["models"],
        "specs": resolve_models(cfg["models"], cfg.get("custom_models")),
    }
    preds = read_table(sm.input.predictions)[0] if sm.input.get("predictions") else None
    write_section(sm.output.html, title, *report_parts(res, preds, cfg, cfg["table"]),
                  headlines=[headline_card(res["summary"], cfg.get("target_rrmse_pct", 3.76))])
    log.info("wrote %s", sm.output.html)
