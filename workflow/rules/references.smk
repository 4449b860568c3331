# Materials Project references: one snapshot index per run, then one table per system.
import os

from vitriflow.references import snapshot_inputs

REFERENCES = SETTINGS.section("references")


rule snapshot_index:
    input:
        # the snapshot files, so a changed file reruns the index and the references after it;
        # none when the folder is absent (fresh clone without ../shared) or the source skips it
        snapshot_inputs(REFERENCES["snapshot_dir"], REFERENCES["source"]),
    output:
        "results/references/snapshot_index.parquet",
    params:
        # the folder of the declared inputs where there are any (staged paths without a shared
        # filesystem), else the configured one (absent or empty: the script says why it goes without)
        snapshot_dir=lambda wildcards, input: (
            os.path.dirname(input[0]) if input else REFERENCES["snapshot_dir"]
        ),
        source=REFERENCES["source"],
        on_missing_snapshot=REFERENCES["on_missing_snapshot"],
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
