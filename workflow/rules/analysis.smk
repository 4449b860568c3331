# Structure analysis of the quenched cells: one job per system (all its structures), then one
# report fragment. On when the config has an `analysis` section (schemas/analysis.schema.yaml).

if SETTINGS.enabled("analysis"):
    ANALYSIS = SETTINGS.section("analysis")

    # every system of the run (config.systems plus expanded scans), from common.smk
    ANALYSIS_SYSTEMS = list(SYSTEM_NAMES)
    ANALYSIS_TABLES = ["rdf", "properties", "distributions", "sq"]

    rule analyze_system:
        input:
            structures="results/md/{system}/quenched.extxyz",
            samples="results/md/{system}/samples.extxyz",
            summary="results/md/{system}/summary.parquet",
            refs=lambda wc: f"results/potentials/{SYSTEMS[wc.system].potential}/elemental_refs.json",
        output:
            rdf="results/analysis/{system}/rdf.parquet",
            properties="results/analysis/{system}/properties.parquet",
            distributions="results/analysis/{system}/distributions.parquet",
            sq="results/analysis/{system}/sq.parquet",
        params:
            analysis=ANALYSIS,
        log:
            "logs/analysis/{system}.log",
        benchmark:
            "logs/analysis/{system}.bench.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/analyze_system.py"

    rule analysis_report:
        input:
            **{
                table: expand(
                    "results/analysis/{system}/{table}.parquet",
                    system=ANALYSIS_SYSTEMS,
                    table=table,
                )
                for table in ANALYSIS_TABLES
            },
        output:
            "results/report/sections/40_analysis.html",
        params:
            analysis=ANALYSIS,
            systems=ANALYSIS_SYSTEMS,
        log:
            "logs/analysis/report.log",
        benchmark:
            "logs/analysis/report.bench.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/analysis_report.py"

    REPORT_SECTIONS.append("results/report/sections/40_analysis.html")
    STAGE_TARGETS.extend(
        expand(
            "results/analysis/{system}/{table}.parquet",
            system=ANALYSIS_SYSTEMS,
            table=ANALYSIS_TABLES,
        )
    )
