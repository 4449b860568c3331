# Materials Project references: one index per run (the registry's full snapshot when it is
# available, else the subset shipped in data/), then one table per system.
from vitriflow.references.sources import SUBSET_PATH

REFERENCES = SETTINGS.section("references")
# decided at start (vitriflow.references.checks): the snapshot files, or None and why
REFERENCE_INDEX = SETTINGS.derived["references"]


rule snapshot_index:
    input:
        # inputs, so a changed file reruns the index and the references after it
        list(REFERENCE_INDEX["files"].values())
        if REFERENCE_INDEX["files"]
        else str(SUBSET_PATH),
    output:
        "results/references/snapshot_index.parquet",
    params:
        files=REFERENCE_INDEX["files"],
        note=REFERENCE_INDEX["note"],
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
        refs=REFERENCES,
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
