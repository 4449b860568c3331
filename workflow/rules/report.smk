# Report: every stage's section (REPORT_SECTIONS) assembled into one self-contained HTML page.


rule report:
    input:
        sections=lambda wc: sorted(REPORT_SECTIONS),
    output:
        report(
            "results/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
    params:
        title=SETTINGS.config["report"]["title"],
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
