# Dissolution-rate surrogates (Liu et al. thesis Ch. 5): evaluate Models I-IV (+V), predict, report.
# The section and its table are checked at start (vitriflow.surrogates.dissolution.checks). The
# stage is skipped with a report note when dissolution.enabled is false, dissolution.table is null
# or its data cannot be had (the note says how to get them).

if SETTINGS.enabled("dissolution"):
    from vitriflow.surrogates.dissolution.evaluate import TABLES as DISS_TABLES

    DISS = SETTINGS.section("dissolution")
    DISS_OUT = "results/surrogates/dissolution"
    DISS_SECTION = "results/report/sections/70_dissolution.html"
    # one Parquet file per table the evaluation writes (evaluate.TABLES)
    DISS_FILES = {name: f"{DISS_OUT}/{stem}.parquet" for name, stem in DISS_TABLES.items()}
    REPORT_SECTIONS.append(DISS_SECTION)
    # checked at start (vitriflow.surrogates.dissolution.checks): the table, or why not
    DISS_SKIP = SETTINGS.derived["dissolution"]["skip_reason"]

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
            f"{DISS_OUT}/models_table.md",
            f"{DISS_OUT}/predictions.csv",
        ]

        rule dissolution_evaluate:
            input:
                table=SETTINGS.derived["dissolution"]["table"],
            output:
                **DISS_FILES,
                summary_csv=f"{DISS_OUT}/models_table.csv",
                summary_md=f"{DISS_OUT}/models_table.md",
                models=f"{DISS_OUT}/models.json",
            params:
                # without predict: new prediction inputs do not refit the models
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
                models=f"{DISS_OUT}/models.json",
            output:
                parquet=f"{DISS_OUT}/predictions.parquet",
                csv=f"{DISS_OUT}/predictions.csv",
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
                **DISS_FILES,
                predictions=f"{DISS_OUT}/predictions.parquet",
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
