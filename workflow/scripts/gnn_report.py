"""Snakemake adapter: write report section 85 for the GNN surrogate (rule gnn_report)."""


def main(smk) -> None:
    import json

    from vitriflow.io import read_table
    from vitriflow.report import skipped_reason
    from vitriflow.runtime import script_logger
    from vitriflow.surrogates.gnn.report import build_section, write_skipped

    log = script_logger("gnn_report", smk.log[0])
    out = smk.output[0]
    reason = smk.params.reason or skipped_reason(smk.input.training)
    if reason:
        write_skipped(out, reason)
        log.info("gnn section: skipped (%s)", reason)
        return
    training = json.loads(open(smk.input.training).read())
    predictions, _ = read_table(smk.input.predictions)
    metrics, _ = read_table(smk.input.metrics)
    build_section(out, predictions, metrics, training)
    log.info("gnn section written: %s", out)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
