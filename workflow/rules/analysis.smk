# Structure analysis of the quenched cells: one job per system (all its structures), then one
# report fragment. On when the config has an `analysis` section (schemas/analysis.schema.yaml).

if SETTINGS.enabled("analysis"):
    ANALYSIS = SETTINGS.section("analysis")
    # data files resolved at start: a registry dataset (fetched by fetch_dataset) or the user's file
    ANALYSIS_DATA = SETTINGS.derived["analysis"]
    ANALYSIS_DATA_PATHS = {k: f.path for k, f in ANALYSIS_DATA.items() if f.path}

    # every system of the run (config.systems plus expanded scans), from common.smk
    ANALYSIS_SYSTEMS = list(SYSTEM_NAMES)
    ANALYSIS_TABLES = ["rdf", "properties", "distributions", "sq"]

    rule analyze_system:
        input:
            structures="results/md/{system}/quenched.extxyz",
            samples="results/md/{system}/samples.extxyz",
            summary="results/md/{system}/summary.parquet",
            refs=lambda wc: f"results/potentials/{SYSTEMS[wc.system].potential}/elemental_refs.json",
            **ANALYSIS_DATA_PATHS,
        output:
            rdf="results/analysis/{system}/rdf.parquet",
            properties="results/analysis/{system}/properties.parquet",
            distributions="results/analysis/{system}/distributions.parquet",
            sq="results/analysis/{system}/sq.parquet",
        params:
            analysis=ANALYSIS,
            data={k: f.path for k, f in ANALYSIS_DATA.items()},
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
            **{k: v for k, v in ANALYSIS_DATA_PATHS.items() if k == "experimental_fq"},
        output:
            "results/report/sections/40_analysis.html",
        params:
            analysis=ANALYSIS,
            data={k: f.path for k, f in ANALYSIS_DATA.items()},
            data_notes={k: f.reason for k, f in ANALYSIS_DATA.items() if f.reason},
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
