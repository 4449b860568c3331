# Random packing of the starting cells of every system.


rule structures:
    input:
        refs="results/references/{system}.parquet",
    output:
        structures="results/structures/{system}/initial.extxyz",
        compositions="results/structures/{system}/compositions.parquet",
    params:
        spec=system_spec,
        packing=SETTINGS.section("packing"),
        seed=SETTINGS.config["seed"],
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


rule structures_report:
    input:
        references=expand("results/references/{system}.parquet", system=SYSTEM_NAMES),
        compositions=expand(
            "results/structures/{system}/compositions.parquet", system=SYSTEM_NAMES
        ),
        summaries=expand("results/md/{system}/summary.parquet", system=SYSTEM_NAMES),
    output:
        "results/report/sections/00_summary.html",
    params:
        systems=SYSTEM_NAMES,
        config=SETTINGS.config,
    log:
        "logs/structures/report.log",
    benchmark:
        "logs/structures/report.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/structures_report.py"


REPORT_SECTIONS.append("results/report/sections/00_summary.html")
