# External datasets (data/registry.yaml): one verified copy per dataset under the cache folder,
# resources/<key>/<public file name>. Config keys that name a dataset are resolved at start
# (vitriflow.config.data_file) to that path, which the reading rule takes as an input.
# The mirror is config data.mirror, else $VITRIFLOW_DATA_MIRROR; without either, pooch downloads
# the pinned public file (a local rule: on a cluster, downloads run on the login node).
import re

from vitriflow.datasets import load_registry

DATASETS = load_registry()
DATA_CACHE_DIR = SETTINGS.config["data"]["cache_dir"]

rule fetch_dataset:
    output:
        f"{DATA_CACHE_DIR}/{{dataset}}/{{filename}}",
    log:
        "logs/datasets/{dataset}/{filename}.log",
    benchmark:
        "logs/datasets/{dataset}/{filename}.bench.tsv"
    wildcard_constraints:
        dataset="|".join(map(re.escape, DATASETS)),
        filename="|".join(sorted({re.escape(d.file) for d in DATASETS.values()})),
    resources:
        mem_mb=1000,
        runtime=30,
    localrule: True
    conda:
        "../../envs/vitriflow.yaml"
    script:
        "../scripts/fetch_dataset.py"
