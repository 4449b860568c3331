"""Compare a trained melt surrogate with the pretrained i-Melt ensemble on any split of the
ingested table: RMSE, paired bootstrap over compositions and worst-melt share, as the evaluate
rule does for the test split.

    .venv/bin/python benchmarks/viscosity_split_compare.py --model results/viscosity/model.pt \
        --table results/viscosity/data/properties.parquet --split valid

The validation split is not a held-out test for either model (both chose their networks on it,
and vitriflow also calibrates its uncertainty there); it is a second set of 76 viscosity melts,
71 density glasses and 59 refractive-index glasses that neither model trained on.
"""

from __future__ import annotations

import argparse

import pandas as pd

from vitriflow.surrogates.viscosity import (
    MeltSurrogate,
    imelt_predict_table,
    rmse_difference,
    rmse_table,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model.pt written by the viscosity_train rule")
    ap.add_argument("--table", required=True, help="properties.parquet written by the ingest rule")
    ap.add_argument("--split", default="valid", choices=("train", "valid", "test"))
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    a = ap.parse_args()
    table = pd.read_parquet(a.table)
    rows = table[table["split"] == a.split]
    preds = {"vitriflow": MeltSurrogate.load(a.model).predict_table(rows), "i-Melt": imelt_predict_table(rows)}
    out = rmse_table(preds, split=a.split).merge(rmse_difference(preds, split=a.split, seed=a.seed), on="target")
    print(out.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
