# Dissolution-rate surrogates (Liu et al. thesis Ch. 5): evaluate Models I-IV (+V), predict, report.
# Skipped with a report note when dissolution.enabled is false or the table is absent.

if "dissolution" in config:
    DISS = config["dissolution"]
    DISS_SECTION = "results/report/sections/70_dissolution.html"
    REPORT_SECTIONS.append(DISS_SECTION)
    if DISS["enabled"]:  # config errors at start, not after minutes of dissolution_evaluate
        try:
            from vitriflow.surrogates.dissolution import check_dissolution_config

            check_dissolution_config(DISS)
        except ValueError as exc:
            sys.exit(f"vitriflow config error: {exc}")
    if not DISS["enabled"]:
        DISS_SKIP = "dissolution.enabled is false in the config."
    elif not DISS["table"]:
        DISS_SKIP = "no dissolution table configured (dissolution.table is null)."
    else:
        try:
            DISS_SKIP = optional_data_file(DISS["table"], "dissolution.table")
        except ConfigError as exc:
            sys.exit(f"vitriflow config error: {exc}")
        if DISS_SKIP:
            DISS_SKIP += (" (a fresh clone has no ../shared data); set dissolution.table to a CSV "
                          "with the documented columns.")

    if DISS_SKIP:

        rule dissolution_skipped:
            output:
                html=DISS_SECTION,
            params:
                skip_reason=DISS_SKIP,
            log:
                "logs/dissolution/report.log",
            benchmark:
                "logs/dissolution/report.bench.tsv"
            resources:
                mem_mb=500,
                runtime=5,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/dissolution_report.py"

    else:
        STAGE_TARGETS += [
            "results/dissolution/models_table.md",
            "results/dissolution/predictions.csv",
        ]

        rule dissolution_evaluate:
            input:
                table=DISS["table"],
            output:
                descriptors="results/dissolution/descriptors.parquet",
                scores="results/dissolution/scores.parquet",
                curves="results/dissolution/cv_curves.parquet",
                extrapolation="results/dissolution/extrapolation_predictions.parquet",
                coefficients="results/dissolution/coefficients.parquet",
                summary_csv="results/dissolution/models_table.csv",
                summary_md="results/dissolution/models_table.md",
                models="results/dissolution/models.json",
            params:
                cfg={k: v for k, v in DISS.items() if k != "predict"},
            log:
                "logs/dissolution/evaluate.log",
            benchmark:
                "logs/dissolution/evaluate.bench.tsv"
            resources:
                mem_mb=1000,
                runtime=20,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/dissolution_evaluate.py"

        rule dissolution_predict:
            input:
                models="results/dissolution/models.json",
            output:
                parquet="results/dissolution/predictions.parquet",
                csv="results/dissolution/predictions.csv",
            params:
                predict=DISS["predict"],
            log:
                "logs/dissolution/predict.log",
            benchmark:
                "logs/dissolution/predict.bench.tsv"
            resources:
                mem_mb=500,
                runtime=5,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/dissolution_predict.py"

        rule dissolution_report:
            input:
                descriptors="results/dissolution/descriptors.parquet",
                scores="results/dissolution/scores.parquet",
                curves="results/dissolution/cv_curves.parquet",
                extrapolation="results/dissolution/extrapolation_predictions.parquet",
                coefficients="results/dissolution/coefficients.parquet",
                models="results/dissolution/models.json",
                predictions="results/dissolution/predictions.parquet",
            output:
                html=DISS_SECTION,
            params:
                cfg=DISS,
            log:
                "logs/dissolution/report.log",
            benchmark:
                "logs/dissolution/report.bench.tsv"
            resources:
                mem_mb=1000,
                runtime=10,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/dissolution_report.py"
