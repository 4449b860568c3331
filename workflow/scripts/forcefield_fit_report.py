"""Report section 55: the forcefield fit, or why it did not run (rule forcefield_fit_report)."""


def main(smk) -> None:
    from vitriflow.report import headline, note_html, write_section
    from vitriflow.runtime import script_logger

    log = script_logger("forcefield_fit", smk.log[0])
    if smk.params.reason:
        write_section(smk.output[0], "Forcefield fit",
                      note_html(f"Forcefield fit skipped: {smk.params.reason}", "bad"),
                      headlines=[headline("Forcefield fit", "skipped", smk.params.reason, "bad")])
        log.info("skipped: %s", smk.params.reason)
        return
    from vitriflow.config import thaw
    from vitriflow.forcefield_fit import fit_reference
    from vitriflow.forcefield_fit.report import write_section_html
    from vitriflow.forcefield_fit.space import load_section

    reference = fit_reference(smk.params.cfg, path=smk.input.reference)
    write_section_html(smk.output[0], smk.params.workdir, reference,
                       section=load_section(thaw(smk.params.cfg)))
    log.info("wrote %s", smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
