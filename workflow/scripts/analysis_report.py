"""Snakemake adapter: the analysis section of the report (rule analysis_report)."""


def main(smk) -> None:
    import pandas as pd

    from vitriflow.analysis import AnalysisSettings
    from vitriflow.analysis.report import SystemTables, write_analysis_section
    from vitriflow.io import read_table
    from vitriflow.runtime import script_logger

    log = script_logger("analysis_report", smk.log[0])
    settings = AnalysisSettings.from_config(smk.params.analysis)
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
                           angle_smoothing_deg=settings.angle_smoothing_deg)
    log.info("analysis section: %d systems -> %s", len(systems), smk.output[0])


if "snakemake" in globals():
    main(snakemake)  # noqa: F821
