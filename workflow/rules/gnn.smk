# Graph-network surrogate: a torch-geometric crystal-graph network learns a per-structure
# property of the quenched cells (energy per atom by default) beyond the ideal-mixing reference,
# cross-validated over compositions against composition-only ridge regression. Enabled by the
# top-level key `gnn` (schemas/gnn.schema.yaml).

if SETTINGS.enabled("gnn"):
    GNN = SETTINGS.section("gnn")
    GNN_SYSTEMS = SETTINGS.derived["gnn"]
    GNN_OUT = "results/surrogates/gnn"

    if SETTINGS.enabled("analysis"):

        rule gnn_train:
            input:
                quenched=expand("results/md/{system}/quenched.extxyz", system=GNN_SYSTEMS),
                properties=expand(
                    "results/analysis/{system}/properties.parquet", system=GNN_SYSTEMS
                ),
            output:
                predictions=f"{GNN_OUT}/predictions.parquet",
                metrics=f"{GNN_OUT}/metrics.parquet",
                training=f"{GNN_OUT}/training.json",
                model=f"{GNN_OUT}/model.pt",
            params:
                gnn=GNN,
                systems=GNN_SYSTEMS,
                checkpoint_dir=f"{GNN_OUT}/checkpoints",
            log:
                "logs/gnn/train.log",
            benchmark:
                "logs/gnn/train.bench.tsv"
            threads: GNN["threads"]
            resources:
                mem_mb=4000,
                runtime=60,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/gnn_train.py"

        rule gnn_report:
            input:
                predictions=f"{GNN_OUT}/predictions.parquet",
                metrics=f"{GNN_OUT}/metrics.parquet",
                training=f"{GNN_OUT}/training.json",
            output:
                "results/report/sections/85_gnn.html",
            params:
                reason="",
            log:
                "logs/gnn/report.log",
            benchmark:
                "logs/gnn/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/gnn_report.py"

        STAGE_TARGETS.extend([f"{GNN_OUT}/metrics.parquet", f"{GNN_OUT}/model.pt"])

    else:

        rule gnn_report:
            output:
                "results/report/sections/85_gnn.html",
            params:
                reason="the analysis stage is off (no `analysis` key), so there are no per-structure properties to learn",
            log:
                "logs/gnn/report.log",
            benchmark:
                "logs/gnn/report.bench.tsv"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=5,
            conda:
                "../../envs/vitriflow.yaml"
            script:
                "../scripts/gnn_report.py"

    REPORT_SECTIONS.append("results/report/sections/85_gnn.html")
