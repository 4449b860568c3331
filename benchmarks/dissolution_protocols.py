"""How much the split protocol, not the model, moves the dissolution RRMSE.

Scores models under the leak-free grouped protocol (whole (glass, initial pH) groups held out)
and under a random split over *points*, where repeated measurements of one group land on both
sides and the inner CV may pick the degree on leaked rows too. The gap between the two is what a
point-level protocol (as the thesis' 3.76 % likely used) hides. Splits, degrees and folds are
the dissolution section's schema defaults.

    .venv/bin/python benchmarks/dissolution_protocols.py [--table PATH] [--splits 20] \\
        [--models III IV V]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vitriflow.config import with_defaults
from vitriflow.surrogates import dissolution as D

DEFAULT_TABLE = (Path(__file__).resolve().parents[2]
                 / "shared/data/dissolution/hamilton_NAS_dissolution.csv")


def point_split(n: int, fraction: float, seed: int) -> np.ndarray:
    test = np.zeros(n, bool)
    test[np.random.default_rng(seed).choice(n, int(round(fraction * n)), replace=False)] = True
    return test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--models", nargs="+", default=["III", "IV", "V"])
    ap.add_argument("--ph-measures", nargs="+", default=["initial", "at_time_t"])
    args = ap.parse_args()
    cfg = with_defaults("dissolution", {"n_splits": args.splits, "ph_measures": args.ph_measures})
    fit = {"max_degree": cfg["max_degree"], "cv_folds": cfg["cv_folds"],
           "alphas": cfg["ridge_alphas"]}
    table = D.load_table(args.table, cfg)
    print("| model | pH | grouped RRMSE % (mean ± sd) | random-point RRMSE % (mean ± sd) | "
          "random-point median |\n|---|---|---|---|---|")
    for ph in args.ph_measures:
        frame = D.describe(table, ph)
        leaky = frame.assign(group=np.arange(len(frame)).astype(str))  # every row its own group
        for name in args.models:
            spec = D.BUILTIN_MODELS[name]
            grouped = D.evaluate_grouped(frame, [spec], n_splits=cfg["n_splits"], seed=cfg["seed"],
                                         test_fraction=cfg["test_fraction"], ph_measure=ph,
                                         **fit)["test_rrmse"]
            points = []
            for k in range(cfg["n_splits"]):
                te = point_split(len(frame), cfg["test_fraction"], k)
                model, _ = D.fit_with_cv(leaky[~te], spec, **fit)
                points.append(D.rrmse(model.predict(leaky[te]), leaky.loc[te, "log10_rate"]))
            print(f"| {name} | {ph} | {100 * grouped.mean():.2f} ± {100 * grouped.std(ddof=1):.2f} "
                  f"| {100 * np.mean(points):.2f} ± {100 * np.std(points, ddof=1):.2f} | "
                  f"{100 * np.median(points):.2f} |", flush=True)


if __name__ == "__main__":
    main()
