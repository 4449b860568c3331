"""Snakemake adapter: the analysis section of the report (rule analysis_report)."""


def _data_notes(reasons, systems):
    """One line per data set the run could not have, where it matters (the experimental F(Q) is
    for silica only)."""
    has_silica = any("formula" in t.properties and (t.properties["formula"] == "SiO2").any()
                     for t in systems)
    notes = {}
    if reasons.get("experimental_fq") and has_silica:
        notes["experimental_fq"] = ("R_chi against the measured F(Q) not computed: "
                                    f"{reasons['experimental_fq']}")
    if reasons.get("scattering_lengths"):
        notes["scattering_lengths"] = ("Neutron F(Q) uses the built-in table of 22 elements: "
                                       f"{reasons['scattering_lengths']}")
    return notes


def main(smk) -> None:
    from dataclasses import replace

    import pandas as pd

    from vitriflow.analysis import AnalysisSettings
    from vitriflow.analysis.report import SystemTables, write_analysis_section
    from vitriflow.io import read_table
    from vitriflow.runtime import script_logger

    log = script_logger("analysis_report", smk.log[0])
    settings = replace(AnalysisSettings.from_config(smk.params.analysis), **smk.params.data)
    n_detail = settings.report_max_systems
    systems = []
    for k, name in enumerate(smk.params.systems):
        # beyond the detailed systems only the properties are read (large scans)
        keys = ("rdf", "properties", "distributions", "sq") if k < n_detail else ("properties",)
        tables = {key: read_table(smk.input[key][k])[0] for key in keys}
        empty = {key: pd.DataFrame() for key in ("rdf", "distributions", "sq") if key not in tables}
        systems.append(SystemTables(name=name, **tables, **empty))
    write_analysis_section(smk.output[0], systems, settings.experimental_fq,
                           (settings.rchi_q_min, settings.rchi_q_max), max_detailed=n_detail,
                           rdf_smoothing_A=settings.plot_smoothing_A,
                           angle_smoothing_deg=settings.angle_smoothing_deg,
                           notes=_data_notes(smk.params.data_notes, systems))
    log.info("analysis section: %d systems -> %s", len(systems), smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
