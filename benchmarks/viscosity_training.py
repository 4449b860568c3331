"""Benchmark: train the melt surrogate (mode preset) on i-Melt data and print time, test RMSE
and the test coverage of its calibrated intervals.

    .venv/bin/python benchmarks/viscosity_training.py --mode full --threads 2
    .venv/bin/python benchmarks/viscosity_training.py --mode full --candidates 4 --set hidden=256 \
        --set dropout=0.3 --no-imelt      # screen a setting: 4 candidates, all kept

Prints per-member seconds/epochs, total fit time and the test RMSE table (vitriflow, and the
pretrained i-Melt ensemble on the same rows unless --no-imelt).
"""

from __future__ import annotations

import argparse
import time

import torch

from vitriflow.surrogates.viscosity import (
    ViscositySurrogate,
    imelt_predict_table,
    load_preset,
    rmse_table,
    screening_params,
    uncertainty_table,
)
from vitriflow.surrogates.viscosity.data import ingest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="demo", help="preset: config/viscosity/<mode>.yaml")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1, help="candidates trained in parallel processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-imelt", action="store_true")
    ap.add_argument("--save", default=None, help="optional path for the fitted model")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset parameter (VALUE as JSON, e.g. lr=0.001)",
    )
    ap.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="train this many candidates and keep them all (quick screening)",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    params = screening_params(
        load_preset(f"config/viscosity/{a.mode}.yaml"), a.set, a.candidates, a.jobs
    )
    good, _, _ = ingest()
    t0 = time.perf_counter()
    est = ViscositySurrogate(seed=a.seed, **params).fit(good)
    print(
        f"fit: {time.perf_counter() - t0:.1f} s on {a.threads} threads x {a.jobs} processes, "
        f"mode {a.mode}"
    )
    for i, h in enumerate(est.history_):
        print(
            f"  member {i} (candidate {h.get('candidate', i)}): {h['seconds']:.1f} s, "
            f"{h['epochs_run']} epochs, best {h['best_epoch']}, valid {h['best_valid_loss']:.4g}"
        )
    for h in getattr(est, "rejected_candidates_", []):
        print(
            f"  rejected candidate {h['candidate']}: {h['seconds']:.1f} s, "
            f"valid {h['best_valid_loss']:.4g}"
        )
    if a.save:
        est.save(a.save, mode=a.mode)
    rows = good[good["split"] == "test"]
    preds = {"vitriflow": est.predict_table(rows)}
    if not a.no_imelt:
        preds["i-Melt"] = imelt_predict_table(rows)
    print(rmse_table(preds).to_string(index=False))
    print("test coverage of the central intervals (raw spread / calibrated sigma):")
    print(uncertainty_table(preds["vitriflow"], est.noise_models()).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
