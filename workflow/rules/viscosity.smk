# Melt viscosity and glass-property surrogate: ingest the i-Melt database -> train the bagged
# physics-guided network (preset config/viscosity/<mode>.yaml) -> evaluate it and the pretrained
# i-Melt ensemble on the same rows -> predict the configured compositions -> report section.
# Enabled by the top-level key `viscosity` (src/vitriflow/schemas/viscosity.schema.yaml).

if SETTINGS.enabled("viscosity"):
    from vitriflow.surrogates.viscosity.presets import preset_path

    VISC = SETTINGS.section("viscosity")
    VISC_OUT = "results/surrogates/viscosity"
    VISC_SECTION = "results/report/sections/60_viscosity.html"
    REPORT_SECTIONS.append(VISC_SECTION)
    STAGE_TARGETS += [
        f"{VISC_OUT}/comparison.csv",
        f"{VISC_OUT}/predictions.parquet",
        VISC_SECTION,
    ]

    rule viscosity_ingest:
        input:
            user=VISC["user_data"],
        output:
            table=f"{VISC_OUT}/data/properties.parquet",
            rejected=f"{VISC_OUT}/data/rejected.parquet",
            summary=f"{VISC_OUT}/data/ingest.json",
            raman=f"{VISC_OUT}/data/raman.parquet",
            raman_rejected=f"{VISC_OUT}/data/raman_rejected.parquet",
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
            preset=str(preset_path(VISC)),
        output:
            model=f"{VISC_OUT}/model.pt",
            summary=f"{VISC_OUT}/training.json",
            cv=f"{VISC_OUT}/cv_predictions.parquet",
        params:
            viscosity=VISC,
            checkpoint_dir=f"{VISC_OUT}/checkpoints",
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
            cv=rules.viscosity_train.output.cv,
        output:
            vitriflow=f"{VISC_OUT}/predictions_vitriflow.parquet",
            imelt=f"{VISC_OUT}/predictions_imelt.parquet",
            comparison=f"{VISC_OUT}/comparison.csv",
            uncertainty=f"{VISC_OUT}/uncertainty.csv",
            domain=f"{VISC_OUT}/domain.csv",
            bias=f"{VISC_OUT}/bias.csv",
            coverage=f"{VISC_OUT}/coverage.csv",
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
            parquet=f"{VISC_OUT}/predictions.parquet",
            csv=f"{VISC_OUT}/predictions.csv",
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
            bias=rules.viscosity_evaluate.output.bias,
            coverage=rules.viscosity_evaluate.output.coverage,
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
