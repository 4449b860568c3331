"""Snakemake adapter: write report section 80 for the PCF surrogate (rule pcf_report)."""


def main(smk) -> None:
    import json

    from vitriflow.io import read_table
    from vitriflow.report import skipped_reason
    from vitriflow.runtime import script_logger
    from vitriflow.surrogates.pcf.report import build_section, write_skipped

    log = script_logger("pcf_report", smk.log[0])
    out = smk.output[0]
    reason = smk.params.reason or skipped_reason(smk.input.training)
    if reason:
        write_skipped(out, reason)
        log.info("pcf section: skipped (%s)", reason)
        return
    training = json.loads(open(smk.input.training).read())
    dataset, _ = read_table(smk.input.dataset)
    predictions, _ = read_table(smk.input.predictions)
    metrics, prov = read_table(smk.input.metrics)
    build_section(out, dataset, predictions, metrics, training,
                  n_examples=int(smk.params.pcf["report_examples"]), timings=prov.get("timings"))
    log.info("pcf section written: %s", out)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
