# Batched melt-quench MD (GPU when present) and the potential's own elemental references.


rule md:
    input:
        structures="results/structures/{system}/initial.extxyz",
    output:
        quenched="results/md/{system}/quenched.extxyz",
        summary="results/md/{system}/summary.parquet",
        trace="results/md/{system}/trace.parquet",
    params:
        spec=system_spec,
        protocol=protocol_of,
        device=config["device"],
        dtype=config["dtype"],
        checkpoint=lambda wc: f"results/md/{wc.system}/checkpoint.pt",
    log:
        "logs/md/{system}.log",
    benchmark:
        "logs/md/{system}.bench.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/md.py"


rule elemental_references:
    input:
        crystals="results/references/{system}_crystals.extxyz",
    output:
        "results/md/{system}/elemental_refs.json",
    params:
        spec=system_spec,
        device=config["device"],
        dtype=config["dtype"],
    log:
        "logs/md/{system}_elemental_refs.log",
    benchmark:
        "logs/md/{system}_elemental_refs.bench.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/elemental_refs.py"


STAGE_TARGETS.extend(
    expand(
        "results/md/{system}/{name}",
        system=SYSTEM_NAMES,
        name=["summary.parquet", "elemental_refs.json"],
    )
)
