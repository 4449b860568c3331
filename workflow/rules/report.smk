# Report: overview sections from the core stages, then one self-contained HTML page.


rule report_overview:
    input:
        references=expand("results/references/{system}.parquet", system=SYSTEM_NAMES),
        compositions=expand(
            "results/structures/{system}/compositions.parquet", system=SYSTEM_NAMES
        ),
        summaries=expand("results/md/{system}/summary.parquet", system=SYSTEM_NAMES),
        traces=expand("results/md/{system}/trace.parquet", system=SYSTEM_NAMES),
    output:
        summary="results/report/sections/00_summary.html",
        md="results/report/sections/30_md.html",
    params:
        systems=SYSTEM_NAMES,
        config=config,
    log:
        "logs/report/overview.log",
    benchmark:
        "logs/report/overview.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/report_overview.py"


rule report:
    input:
        sections=lambda wc: sorted(
            [
                "results/report/sections/00_summary.html",
                "results/report/sections/30_md.html",
            ]
            + REPORT_SECTIONS
        ),
    output:
        report(
            "results/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
    params:
        title=config["report"]["title"],
    log:
        "logs/report/report.log",
    benchmark:
        "logs/report/report.bench.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/report.py"
