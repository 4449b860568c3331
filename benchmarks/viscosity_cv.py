"""Composition-grouped k-fold cross-validation of a viscosity-surrogate setting over i-Melt's
train + valid melts (the test split stays untouched): RMSE, bias and interval coverage by
distance band.

    .venv/bin/python benchmarks/viscosity_cv.py --mode full --candidates 4 --jobs 2 \\
        --properties viscosity tg sconf_tg cp_liquid --save oof_visc.parquet
    .venv/bin/python benchmarks/viscosity_cv.py --mode full --candidates 4 --jobs 2 \\
        --properties density refractive_index --set 'density_prior="pmv"' --save oof_dens.parquet
    .venv/bin/python benchmarks/viscosity_cv.py --compare oof_b.parquet oof_a.parquet

Melts are clustered by composition (single linkage at ``--radius`` mol%, the mol% that must
change to turn one melt into the other) and whole clusters are dealt into folds
(``vitriflow.surrogates.viscosity.folds``): near-duplicates never sit on both sides, and every
held-out melt is at least ``--radius`` from its fold model's training melts, as a new glass
2-12 mol% from the database is. Each fold model trains on the other folds' train rows and
early-stops on their valid rows (the workflow's protocol, minus one fold). Prints per target the
RMSE, the mean signed error (prediction - measurement; bootstrap interval over melts, and in
K2O- and MgO-bearing glasses, above log eta = 7, and over the melts inside their fold model's
training range of every oxide, as a new glass within the database's range is), and the
coverage of the central 95 % interval overall and by distance to the fold's training melts:
with each fold model's own sigma (``model``, validation-fitted) and with a noise model (spread
and distance) fitted on the other folds' out-of-fold rows (``oof``), as the fit's out-of-fold
calibration does.

``--show PATH`` prints the report of a saved out-of-fold table; ``--compare A B`` prints the
paired bootstrap over melts of RMSE(A) - RMSE(B) for two saved out-of-fold tables (same folds,
so the same rows). ``--group-set KEY=VALUE`` changes one setting of the task groups that own
``--properties`` (``--set`` changes the preset's top level, which a group's own key overrides).
``--test`` fits the setting once on train + valid (validation-fitted sigma) and predicts i-Melt's
test rows instead; ``--compare`` pairs two such tables as well.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import torch

from vitriflow.surrogates.viscosity import (
    ViscositySurrogate,
    comparison_table,
    load_preset,
    screening_params,
)
from vitriflow.surrogates.viscosity.data import ingest
from vitriflow.surrogates.viscosity.evaluate import bias_table, coverage_table, cross_fitted_std
from vitriflow.surrogates.viscosity.folds import out_of_fold


def report(oof: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per target: RMSE, bias and coverage (fold models' sigma, cross-fitted oof)."""
    oof = oof.assign(y_std_oof=cross_fitted_std(oof))
    bias = bias_table(oof, seed=seed)
    own = coverage_table(oof, std_col="y_std").set_index("target")
    cf = coverage_table(oof, std_col="y_std_oof").set_index("target")
    out = bias.set_index("target")
    out["cover model"] = own["cover"]
    for col in cf.columns:
        if col.startswith("cover") or col.startswith("n "):
            out[f"{col} oof" if col.startswith("cover") else col] = cf[col]
    return out.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="demo", help="preset: config/viscosity/<mode>.yaml")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--radius", type=float, default=2.0, help="cluster radius, mol%%")
    ap.add_argument("--jobs", type=int, default=1, help="networks trained in parallel processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--properties", nargs="+", default=None, help="only these properties")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset parameter (VALUE as JSON)")
    ap.add_argument("--group-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a parameter of the task groups that own --properties")
    ap.add_argument("--candidates", type=int, default=None, help="members per group (all kept)")
    ap.add_argument("--save", default=None, help="write the out-of-fold predictions (Parquet)")
    ap.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"),
                    help="paired bootstrap of two saved out-of-fold tables, then exit")
    ap.add_argument("--test", action="store_true",
                    help="instead of CV: fit on train + valid, predict i-Melt's test rows")
    ap.add_argument("--show", default=None, metavar="PATH",
                    help="print the report of a saved out-of-fold table, then exit")
    a = ap.parse_args()
    pd.set_option("display.width", 250)
    if a.show:
        print(report(pd.read_parquet(a.show), seed=a.seed).round(4).to_string(index=False))
        return
    if a.compare:
        preds = {name: pd.read_parquet(path).assign(split="held")
                 for name, path in zip("AB", a.compare, strict=True)}
        print(f"A = {a.compare[0]}, B = {a.compare[1]}")
        print(comparison_table(preds, "A", "B", split="held", seed=a.seed).round(4)
              .to_string(index=False))
        return
    torch.set_num_threads(1)
    params = screening_params(load_preset(f"config/viscosity/{a.mode}.yaml"), a.set,
                              a.candidates, a.jobs, a.group_set, a.properties)
    fold_params = dict(params)
    if "calibration" in ViscositySurrogate().get_params():
        # each fold model's own sigma is the validation-fitted one ("cover model"); the
        # out-of-fold calibration is done here, across folds ("cover oof")
        fold_params["calibration"] = "valid"
    good, _, _ = ingest()
    if a.properties:
        good = good[good["property"].isin(a.properties)]
    table = good[good["split"] != "test"]
    t0 = time.perf_counter()
    if a.test:
        # the preset's own protocol (train, early stopping on valid), scored on the test rows
        model = ViscositySurrogate(seed=a.seed, **fold_params).fit(table)
        pred = model.predict_table(good[good["split"] == "test"]).assign(split="held")
        if a.save:
            pred.to_parquet(a.save)
        print(json.dumps({"mode": a.mode, "test": True, "set": a.set, "group_set": a.group_set,
                          "seconds": round(time.perf_counter() - t0)}))
        print(bias_table(pred, seed=a.seed).round(4).to_string(index=False))
        return
    oof = out_of_fold(lambda k: ViscositySurrogate(seed=a.seed, **fold_params), table,
                      n_folds=a.folds, radius_mol=a.radius, seed=a.seed)
    seconds = round(time.perf_counter() - t0)
    if a.save:
        oof.to_parquet(a.save)
    print(json.dumps({"mode": a.mode, "folds": a.folds, "radius_mol": a.radius, "set": a.set,
                      "group_set": a.group_set,
                      "candidates": a.candidates, "properties": a.properties,
                      "seconds": seconds}))
    print(report(oof, seed=a.seed).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
