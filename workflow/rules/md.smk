# Batched melt-quench MD (GPU when present) and the potential's own elemental references.


rule md:
    input:
        structures="results/structures/{system}/initial.extxyz",
        potential=potential_files,
    output:
        quenched="results/md/{system}/quenched.extxyz",
        summary="results/md/{system}/summary.parquet",
        trace="results/md/{system}/trace.parquet",
        samples="results/md/{system}/samples.extxyz",
    params:
        spec=system_spec,
        protocol=protocol_of,
        device=SETTINGS.config["device"],
        dtype=SETTINGS.config["dtype"],
        checkpoint=lambda wc: f"results/md/{wc.system}/checkpoint.pt",
    log:
        "logs/md/{system}.log",
    benchmark:
        "logs/md/{system}.bench.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/md.py"


rule elemental_references:
    input:
        index="results/references/snapshot_index.parquet",
    output:
        "results/potentials/{potential}/elemental_refs.json",
    params:
        elements=lambda wc: elements_of_potential(wc.potential),
        device=SETTINGS.config["device"],
        dtype=SETTINGS.config["dtype"],
    log:
        "logs/potentials/{potential}_elemental_refs.log",
    benchmark:
        "logs/potentials/{potential}_elemental_refs.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/elemental_refs.py"


rule md_report:
    input:
        summaries=expand("results/md/{system}/summary.parquet", system=SYSTEM_NAMES),
        traces=expand("results/md/{system}/trace.parquet", system=SYSTEM_NAMES),
    output:
        "results/report/sections/30_md.html",
    params:
        systems=SYSTEM_NAMES,
    log:
        "logs/md/report.log",
    benchmark:
        "logs/md/report.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/md_report.py"


REPORT_SECTIONS.append("results/report/sections/30_md.html")
STAGE_TARGETS.extend(
    expand("results/md/{system}/summary.parquet", system=SYSTEM_NAMES)
    + expand(
        "results/potentials/{potential}/elemental_refs.json",
        potential=sorted({s.potential for s in SYSTEMS.values()}),
    )
)
