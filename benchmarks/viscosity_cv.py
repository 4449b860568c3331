"""Grouped k-fold cross-validation of a melt-surrogate setting over train + valid (test untouched).

    .venv/bin/python benchmarks/viscosity_cv.py --mode full --properties viscosity tg sconf_tg \
        cp_liquid --candidates 4 --jobs 2                      # the viscosity group, 5 folds
    .venv/bin/python benchmarks/viscosity_cv.py --mode full --candidates 4 --jobs 2 \
        --set 'sigmas={"viscosity": 0.1}' --properties viscosity tg sconf_tg cp_liquid

i-Melt's validation split holds 75 viscosity melts; pooling the out-of-fold predictions of k
folds over the 710 train + valid melts is a larger yardstick for choosing a setting. Folds are
by composition (every row of a melt, for every property, in the same fold); each fold trains
on the others and early-stops on itself. Prints the pooled out-of-fold RMSE per target, and
the RMSE without the k worst melts (the errors are heavy tailed: a held-out pure SiO2 or
SiO2-free melt is an extrapolation), and how often the held-out values fall inside the central
68 % / 95 % intervals, with the raw ensemble spread and with the calibrated sigma.

``--nested`` keeps early stopping off the scored fold: fold k is scored, fold k+1 is the
validation split, the rest train (with 10 folds: 568 / 71 / 71 melts, close to i-Melt's
635 / 75 / 80). This is the protocol for settings that use the validation melts themselves,
such as ``refit`` (retrain on train + valid):

    .venv/bin/python benchmarks/viscosity_cv.py --mode full --properties viscosity tg sconf_tg \
        cp_liquid --candidates 4 --jobs 2 --folds 10 --nested --save oof_base.parquet
    ... same ... --set refit=true --save oof_refit.parquet
    .venv/bin/python benchmarks/viscosity_cv.py --compare oof_refit.parquet oof_base.parquet

``--compare A B`` prints the paired bootstrap over melts of RMSE(A) - RMSE(B) for two saved
out-of-fold tables (same folds and seeds, so the same rows).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GroupKFold

from vitriflow.ingest.imelt_data import ingest
from vitriflow.surrogates.melt.features import composition_key
from vitriflow.surrogates.viscosity import (
    MODES,
    MeltSurrogate,
    comparison_table,
    rmse_table,
    screening_params,
    uncertainty_table,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=sorted(MODES), default="demo")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1, help="candidates trained in parallel processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--properties", nargs="+", default=None, help="only these properties (default: all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset parameter (VALUE as JSON)")
    ap.add_argument("--candidates", type=int, default=None, help="members per group (all kept)")
    ap.add_argument("--drop-worst", type=int, default=10, help="also report RMSE without the k worst melts")
    ap.add_argument("--nested", action="store_true",
                    help="early-stop on the next fold, score the held-out one")
    ap.add_argument("--save", default=None, help="write the out-of-fold predictions (Parquet)")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"),
                    help="paired bootstrap of two saved out-of-fold tables, then exit")
    a = ap.parse_args()
    if a.compare:
        preds = {name: pd.read_parquet(path) for name, path in zip("AB", a.compare, strict=True)}
        table = comparison_table(preds, "A", "B", split="held", seed=a.seed)
        print(f"A = {a.compare[0]}, B = {a.compare[1]}")
        print(table.round(4).to_string(index=False))
        return
    torch.set_num_threads(1)
    params = screening_params(a.mode, a.set, a.candidates, a.jobs)
    good, _, _ = ingest()
    dev = good[good["split"] != "test"]
    if a.properties:
        dev = dev[dev["property"].isin(a.properties)]
    comp = composition_key(dev)
    t0 = time.perf_counter()
    frames = []
    folds = [held for _, held in GroupKFold(n_splits=a.folds).split(dev, groups=comp)]
    for k, held in enumerate(folds):
        split = np.full(len(dev), "train", dtype=object)
        split[held] = "valid"
        if a.nested:
            split[folds[(k + 1) % a.folds]] = "valid"
            split[held] = "held"
        fold = dev.assign(split=split)
        est = MeltSurrogate(seed=a.seed + 100 * k, **params).fit(fold)
        scored = fold[fold["split"] == ("held" if a.nested else "valid")]
        frames.append(est.predict_table(scored).assign(split="held"))
        print(f"fold {k + 1}/{a.folds}: {len(held)} rows held out, {time.perf_counter() - t0:.0f} s", flush=True)
    oof = pd.concat(frames, ignore_index=True)
    if a.save:
        oof.to_parquet(a.save)
    table = rmse_table({"cv": oof}, split="held").set_index("target")
    oof["e2"] = (oof["y_pred"] - oof["y_true"]) ** 2
    oof["composition"] = composition_key(oof)
    trimmed = {}
    for (prop, eq), g in oof.groupby(["property", "equation"]):
        per = g.groupby("composition")["e2"].agg(["sum", "size"]).sort_values("sum", ascending=False)
        rest = per.iloc[a.drop_worst:]
        trimmed[f"{prop}:{eq}" if eq else prop] = float(np.sqrt(rest["sum"].sum() / max(rest["size"].sum(), 1)))
    table[f"cv without {a.drop_worst} worst melts"] = pd.Series(trimmed)
    print(json.dumps({"mode": a.mode, "folds": a.folds, "set": a.set, "candidates": a.candidates,
                      "seconds": round(time.perf_counter() - t0)}))
    print(table.round(4).to_string())
    # each fold's model calibrated its sigma on its own validation fold: coverage over every melt
    cover = uncertainty_table(oof, {}, split="held").drop(columns=["a", "b", "n_calibration"])
    print("held-out coverage of the central intervals (raw spread / calibrated sigma):")
    print(cover.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
