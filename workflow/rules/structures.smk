# Random packing of the starting cells of every system.


rule structures:
    input:
        refs="results/references/{system}.parquet",
    output:
        structures="results/structures/{system}/initial.extxyz",
        compositions="results/structures/{system}/compositions.parquet",
    params:
        spec=system_spec,
        packing=config["packing"],
        seed=config["seed"],
    log:
        "logs/structures/{system}.log",
    benchmark:
        "logs/structures/{system}.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/structures.py"
