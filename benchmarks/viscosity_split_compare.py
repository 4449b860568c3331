"""Compare vitriflow with the pretrained i-Melt ensemble on the validation or the test split,
from the predictions the viscosity_evaluate rule wrote for both: RMSE, paired bootstrap over
compositions and worst-melt share (``--split test`` is the rule's own comparison.csv).

    .venv/bin/python benchmarks/viscosity_split_compare.py \\
        --results results/surrogates/viscosity --split valid

The validation split is not a held-out test for either model (both chose their networks on it,
and vitriflow also calibrates its uncertainty there); it is a second set of 76 viscosity melts,
71 density glasses and 59 refractive-index glasses that neither model trained on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from vitriflow.surrogates.viscosity import comparison_table


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--results",
        default="results/surrogates/viscosity",
        help="folder with predictions_vitriflow.parquet and predictions_imelt.parquet",
    )
    ap.add_argument("--split", default="valid", choices=("valid", "test"))
    ap.add_argument(
        "--seed", type=int, default=0, help="bootstrap seed (the config's viscosity.seed)"
    )
    a = ap.parse_args()
    res = Path(a.results)
    preds = {
        "vitriflow": pd.read_parquet(res / "predictions_vitriflow.parquet"),
        "i-Melt": pd.read_parquet(res / "predictions_imelt.parquet"),
    }
    print(comparison_table(preds, split=a.split, seed=a.seed).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
