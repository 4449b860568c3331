"""Time the PCF surrogate's prediction of one glass's full set of partial g(r) on the CPU.

Target: < 10 ms per glass. With ``--model results/surrogates/pcf/model.joblib`` the
trained workflow model is timed on a glass of its family; without it, each model kind is built
with the default architecture and the largest forest of the default grid (60 fully grown trees)
on a synthetic doped-borosilicate family — prediction cost depends on the architecture and the
forest size, not on the data, so the timing carries over.

    .venv/bin/python benchmarks/pcf_predict.py [--model PATH] [--repeats 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def _time(fn, repeats: int) -> dict[str, float]:
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    ts = np.asarray(ts)
    return {"median_ms": float(np.median(ts)), "p90_ms": float(np.percentile(ts, 90)),
            "min_ms": float(ts.min())}


def synthetic_predictors(epochs: int = 3):
    import tempfile
    from pathlib import Path

    from vitriflow.io import write_table
    from vitriflow.surrogates.pcf import PCFFingerprint, PCFPredictor, PCFSurrogate, build_dataset
    from vitriflow.surrogates.pcf.synthetic import doped_silicate_compositions, synthetic_family

    r = np.arange(0.01, 10.0, 0.02)  # the analysis stage's default grid: 500 points
    comps, rdf = synthetic_family(doped_silicate_compositions(amounts=(0.02, 0.08, 0.14, 0.2)), r,
                                  replicas=1)
    with tempfile.TemporaryDirectory() as tmp:
        write_table(comps, Path(tmp) / "c.parquet", {})
        write_table(rdf, Path(tmp) / "r.parquet", {})
        ds = build_dataset([("bench", Path(tmp) / "r.parquet", Path(tmp) / "c.parquet")])
    fp = PCFFingerprint(tuple(ds.components))
    X = ds.features(fp)
    out = {}
    for kind in ("autoencoder", "pca", "direct"):
        m = PCFSurrogate(kind, forest={"n_estimators": 60, "max_depth": None, "max_features": 1.0},
                         autoencoder={"epochs": epochs, "patience": 0}).fit(X, ds.y)
        out[kind] = PCFPredictor(m, fp, ds.r, tuple(sorted(set(ds.meta["pair"]))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model",
                    help="a trained model.joblib (default: synthetic, default architecture)")
    ap.add_argument("--glass", default="SiO2=0.54,B2O3=0.18,Na2O=0.18,BaO=0.10",
                    help="oxide=fraction,... of the glass to predict")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from vitriflow.surrogates.pcf import PCFPredictor

    glass = {k: float(v) for k, v in (kv.split("=") for kv in args.glass.split(","))}
    predictors = {"model": PCFPredictor.load(args.model)} if args.model else synthetic_predictors()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} torch thread(s), {args.repeats} repeats")
    print("| model | pairs per glass | r points | median ms | p90 ms | min ms |")
    print("|---|---|---|---|---|---|")
    for name, pred in predictors.items():
        pairs = pred.glass_pairs(glass)
        t = _time(lambda pred=pred: pred.predict(glass), args.repeats)
        kind = pred.info.get("kind", name)
        print(f"| {kind} | {len(pairs)} | {len(pred.r)} | {t['median_ms']:.2f} | {t['p90_ms']:.2f} "
              f"| {t['min_ms']:.2f} |")


if __name__ == "__main__":
    main()
