# Melt/glass property surrogate (issue 4): ingest i-Melt data -> train a bagged physics-guided
# network -> evaluate on the test split -> pretrained i-Melt on the same rows -> compare -> report.
# Enabled by the presence of the top-level `viscosity` key.
if "viscosity" in config:
    VISC = config["viscosity"]
    validate(VISC, schema="../schemas/viscosity.schema.yaml", set_default=True)
    try:
        from vitriflow.surrogates.viscosity import check_model_config

        check_model_config(VISC)
    except (TypeError, ValueError) as exc:
        sys.exit(f"vitriflow config error: viscosity (mode {VISC.get('mode')}, model): {exc}")
    try:
        from vitriflow.surrogates.viscosity import check_predict_config

        check_predict_config(VISC)
    except ValueError as exc:
        sys.exit(f"vitriflow config error: {exc}")
    VISC_SECTION = "results/report/sections/60_viscosity.html"
    REPORT_SECTIONS.append(VISC_SECTION)
    STAGE_TARGETS += [
        "results/viscosity/comparison.csv",
        "results/viscosity/predictions.parquet",
        VISC_SECTION,
    ]

    rule viscosity_ingest:
        input:
            user=VISC["user_data"],
        output:
            table="results/viscosity/data/properties.parquet",
            rejected="results/viscosity/data/rejected.parquet",
            summary="results/viscosity/data/ingest.json",
            raman="results/viscosity/data/raman.parquet",
            raman_rejected="results/viscosity/data/raman_rejected.parquet",
        log:
            "logs/viscosity/ingest.log",
        benchmark:
            "logs/viscosity/ingest.bench.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/viscosity_ingest.py"

    rule viscosity_train:
        input:
            table=rules.viscosity_ingest.output.table,
        output:
            model="results/viscosity/model.pt",
            summary="results/viscosity/training.json",
        params:
            cfg=VISC,
            checkpoint_dir="results/viscosity/checkpoints",
        threads: VISC["threads"]
        log:
            "logs/viscosity/train.log",
        benchmark:
            "logs/viscosity/train.bench.tsv"
        resources:
            mem_mb=3000,
            runtime=45,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/viscosity_train.py"

    rule viscosity_evaluate:
        input:
            table=rules.viscosity_ingest.output.table,
            model=rules.viscosity_train.output.model,
        output:
            vitriflow="results/viscosity/predictions_vitriflow.parquet",
            imelt="results/viscosity/predictions_imelt.parquet",
            comparison="results/viscosity/comparison.csv",
            uncertainty="results/viscosity/uncertainty.csv",
            domain="results/viscosity/domain.csv",
        params:
            compare_imelt=VISC["compare_imelt"],
            seed=VISC["seed"],
        threads: VISC["threads"]
        log:
            "logs/viscosity/evaluate.log",
        benchmark:
            "logs/viscosity/evaluate.bench.tsv"
        resources:
            mem_mb=3000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/viscosity_evaluate.py"

    rule viscosity_predict:
        input:
            model=rules.viscosity_train.output.model,
        output:
            parquet="results/viscosity/predictions.parquet",
            csv="results/viscosity/predictions.csv",
        params:
            predict=VISC["predict"],
        log:
            "logs/viscosity/predict.log",
        benchmark:
            "logs/viscosity/predict.bench.tsv"
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/viscosity_predict.py"

    rule viscosity_report:
        input:
            table=rules.viscosity_ingest.output.table,
            rejected=rules.viscosity_ingest.output.rejected,
            ingest=rules.viscosity_ingest.output.summary,
            model=rules.viscosity_train.output.model,
            training=rules.viscosity_train.output.summary,
            vitriflow=rules.viscosity_evaluate.output.vitriflow,
            imelt=rules.viscosity_evaluate.output.imelt,
            comparison=rules.viscosity_evaluate.output.comparison,
            uncertainty=rules.viscosity_evaluate.output.uncertainty,
            domain=rules.viscosity_evaluate.output.domain,
            predictions=rules.viscosity_predict.output.parquet,
        output:
            html=VISC_SECTION,
        params:
            compare_imelt=VISC["compare_imelt"],
        log:
            "logs/viscosity/report.log",
        benchmark:
            "logs/viscosity/report.bench.tsv"
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/vitriflow.yaml"
        script:
            "../scripts/viscosity_report.py"
