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
SiO2-free melt is an extrapolation).
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
from vitriflow.surrogates.viscosity import MODES, MeltSurrogate, rmse_table, screening_params


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
    a = ap.parse_args()
    torch.set_num_threads(1)
    params = screening_params(a.mode, a.set, a.candidates, a.jobs)
    good, _, _ = ingest()
    dev = good[good["split"] != "test"]
    if a.properties:
        dev = dev[dev["property"].isin(a.properties)]
    comp = composition_key(dev)
    t0 = time.perf_counter()
    frames = []
    for k, (_, held) in enumerate(GroupKFold(n_splits=a.folds).split(dev, groups=comp)):
        split = np.full(len(dev), "train", dtype=object)
        split[held] = "valid"
        fold = dev.assign(split=split)
        est = MeltSurrogate(seed=a.seed + 100 * k, **params).fit(fold)
        frames.append(est.predict_table(fold[fold["split"] == "valid"]))
        print(f"fold {k + 1}/{a.folds}: {len(held)} rows held out, {time.perf_counter() - t0:.0f} s", flush=True)
    oof = pd.concat(frames, ignore_index=True)
    table = rmse_table({"cv": oof}, split="valid").set_index("target")
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


if __name__ == "__main__":
    main()
