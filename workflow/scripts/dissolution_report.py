"""Report section 70: the dissolution models, or a note saying why the stage was skipped."""
from vitriflow.runtime import script_logger


def main(smk):
    log = script_logger("dissolution", smk.log[0])
    from vitriflow.io import read_table
    from vitriflow.report import headline, note_html, write_section
    from vitriflow.surrogates.dissolution.evaluate import TABLES
    from vitriflow.surrogates.dissolution.report import TITLE, headline_card, report_parts

    if smk.params.get("skip_reason"):
        reason = smk.params.skip_reason
        log.info("skipped: %s", reason)
        write_section(smk.output.html, TITLE, note_html(f"Stage skipped: {reason}"),
                      headlines=[headline("Dissolution models", "skipped", reason)])
        return
    cfg = smk.params.cfg
    res = {name: read_table(smk.input[name])[0] for name in TABLES}
    predictions = read_table(smk.input.predictions)[0]
    write_section(smk.output.html, TITLE, *report_parts(res, predictions, cfg, cfg["table"]),
                  headlines=[headline_card(res["summary"], cfg["target_rrmse_pct"])])
    log.info("wrote %s", smk.output.html)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
