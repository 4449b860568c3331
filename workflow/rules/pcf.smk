# Pair-correlation-function surrogate: learn the partial g(r) of a composition family
# from the analysis stage's RDFs; autoencoder + forest vs PCA + forest vs direct forest, evaluated
# on held-out compositions. Enabled by the top-level key `pcf` (schemas/pcf.schema.yaml).

if SETTINGS.enabled("pcf"):
    PCF = SETTINGS.section("pcf")
    PCF_SYSTEMS = SETTINGS.derived["pcf"]
    PCF_OUT = "results/surrogates/pcf"

    if SETTINGS.enabled("analysis"):

        rule pcf_train:
            input:
                rdf=expand("results/analysis/{system}/rdf.parquet", system=PCF_SYSTEMS),
                compositions=expand(
                    "results/structures/{system}/compositions.parquet", system=PCF_SYSTEMS
                ),
            output:
                dataset=f"{PCF_OUT}/dataset.parquet",
                predictions=f"{PCF_OUT}/predictions.parquet",
                metrics=f"{PCF_OUT}/metrics.parquet",
                training=f"{PCF_OUT}/training.json",
                model=f"{PCF_OUT}/model.joblib",
            params:
                pcf=PCF,
                systems=PCF_SYSTEMS,
            log:
                "logs/pcf/train.log",
            benchmark:
                "logs/pcf/train.bench.tsv"
            threads: PCF["threads"]
            resources:
                mem_mb=4000,
                runtime=60,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/pcf_train.py"

        rule pcf_report:
            input:
                dataset=f"{PCF_OUT}/dataset.parquet",
                predictions=f"{PCF_OUT}/predictions.parquet",
                metrics=f"{PCF_OUT}/metrics.parquet",
                training=f"{PCF_OUT}/training.json",
            output:
                "results/report/sections/80_pcf.html",
            params:
                pcf=PCF,
                reason="",
            log:
                "logs/pcf/report.log",
            benchmark:
                "logs/pcf/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/pcf_report.py"

        STAGE_TARGETS.extend(
            [f"{PCF_OUT}/metrics.parquet", f"{PCF_OUT}/model.joblib"]
        )

    else:

        rule pcf_report:
            output:
                "results/report/sections/80_pcf.html",
            params:
                pcf=PCF,
                reason="the analysis stage is off (no `analysis` key), so there are no RDFs to learn",
            log:
                "logs/pcf/report.log",
            benchmark:
                "logs/pcf/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=5,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/pcf_report.py"

    REPORT_SECTIONS.append("results/report/sections/80_pcf.html")
