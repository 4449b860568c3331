# Materials Project references: one snapshot index per run, then one table per system.


rule snapshot_index:
    output:
        "results/references/snapshot_index.parquet",
    params:
        snapshot_dir=config["references"]["snapshot_dir"],
        source=config["references"]["source"],
        on_missing_snapshot=config["references"]["on_missing_snapshot"],
    log:
        "logs/references/snapshot_index.log",
    benchmark:
        "logs/references/snapshot_index.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/snapshot_index.py"


rule references:
    input:
        index="results/references/snapshot_index.parquet",
    output:
        table="results/references/{system}.parquet",
        crystals="results/references/{system}_crystals.extxyz",
    params:
        spec=system_spec,
        refs=config["references"],
    log:
        "logs/references/{system}.log",
    benchmark:
        "logs/references/{system}.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/references.py"
