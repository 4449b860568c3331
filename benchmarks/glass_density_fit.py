"""Fit and evaluate the glass density model (src/vitriflow/glass_density.py) on i-Melt's data.

Usage::

    .venv/bin/python benchmarks/glass_density_fit.py                   # tables only
    .venv/bin/python benchmarks/glass_density_fit.py --emit-constants  # + the constants block
    .venv/bin/python benchmarks/glass_density_fit.py --write           # + rewrite that block

Procedure (deterministic, CPU, a few seconds):

1. i-Melt NKCMAS density rows (``vitriflow.surrogates.viscosity.data``), fixed
   train/valid/test splits.
2. Train+valid compositions are grouped by single-linkage clustering at 0.02 mole fraction
   (Chebyshev distance): any two compositions within 2 mol% in every oxide share a group, so
   near-duplicates never sit on both sides of a fold. 10-fold ``GroupKFold``.
3. Forward selection over the candidate terms (``glass_density.TERMS``), V_SiO2 pinned to
   vitreous silica (2.20 g/cm3), Huber threshold 0.02 g/cm3: at each step add the term that
   lowers the grouped-CV RMSE most; stop when the best one gains < 2 %.
4. Ridge strength on the same folds: the strongest whose grouped-CV RMSE is within 1 % of the
   best. Final fit on all train+valid rows.
5. Report grouped-CV (out-of-fold) and test-split errors, by family, against the purely
   additive model (all six V_i free, plain least squares), with a drop-one ablation of every
   selected term.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.model_selection import GroupKFold

from vitriflow import glass_density as gd
from vitriflow.surrogates.viscosity.data import load_imelt, validate
from vitriflow.surrogates.viscosity.features import OXIDES as COLS

N_FOLDS = 10
GROUP_TOL = 0.02  # mole fraction
MIN_GAIN = 0.02  # a term must cut the grouped-CV RMSE by >= 2 %
SELECT_RIDGE = 1e-8
RIDGES = (0.0, 1e-8, 3e-8, 1e-7, 3e-7, 1e-6)
HUBER = 0.02  # g/cm3
RIDGE_TOL = 0.01  # take the strongest ridge within 1 % of the best grouped-CV RMSE
FIXED = gd.SILICA_PIN
MODULE = Path(__file__).resolve().parents[1] / "src" / "vitriflow" / "glass_density.py"


def load_density() -> pd.DataFrame:
    good, _ = validate(load_imelt(properties=("density",)))
    return good.reset_index(drop=True)


def composition_groups(x: np.ndarray, tol: float = GROUP_TOL) -> np.ndarray:
    """Single-linkage clusters: rows closer than ``tol`` in every oxide share a label."""
    return fcluster(linkage(x, method="single", metric="chebyshev"), t=tol, criterion="distance")


def families(df: pd.DataFrame) -> dict[str, np.ndarray]:
    x = df[list(COLS)].to_numpy()
    nz = x > 1e-4
    si, al, na, k, mg, ca = nz.T
    n_mod = nz[:, 2:].sum(axis=1)
    mods = x[:, 2:].sum(axis=1)
    return {
        "all": np.ones(len(df), bool),
        "binary silicates": si & ~al & (n_mod == 1),
        "Al-free, >=2 modifiers": si & ~al & (n_mod >= 2),
        "aluminosilicates, peralkaline/metaluminous": si & al & (x[:, 1] <= mods + 1e-9),
        "aluminosilicates, peraluminous": si & al & (x[:, 1] > mods + 1e-9),
        "Al2O3-CaO (no SiO2)": ~si,
        "K-bearing": k,
        "Mg-bearing": mg,
        "Na+K mixed alkali": na & k,
    }


def metrics(res: np.ndarray) -> dict[str, float]:
    if len(res) == 0:
        return {"n": 0, "rmse": np.nan, "bias": np.nan, "max": np.nan, "p95": np.nan}
    a = np.abs(res)
    return {"n": len(res), "rmse": float(np.sqrt(np.mean(res ** 2))), "bias": float(res.mean()),
            "max": float(a.max()), "p95": float(np.quantile(a, 0.95))}


def make(terms, ridge, fixed=FIXED) -> gd.GlassDensityModel:
    return gd.GlassDensityModel(terms=tuple(terms), ridge=ridge, huber_g_cm3=HUBER,
                                fixed=dict(fixed or {}))


def oof(x, y, groups, terms, ridge, fixed=FIXED) -> np.ndarray:
    """Out-of-fold predictions with 10-fold GroupKFold."""
    pred = np.empty(len(y))
    for tr, te in GroupKFold(N_FOLDS).split(x, y, groups):
        pred[te] = make(terms, ridge, fixed).fit(x[tr], y[tr]).predict(x[te])
    return pred


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def forward_select(x, y, groups, fixed=FIXED):
    chosen: list[str] = []
    best = rmse(oof(x, y, groups, chosen, SELECT_RIDGE, fixed), y)
    path = [("(additive, V_SiO2 pinned)", best)]
    while True:
        scores = {t: rmse(oof(x, y, groups, [*chosen, t], SELECT_RIDGE, fixed), y)
                  for t in gd.TERMS if t not in chosen}
        if not scores:
            break
        t, s = min(scores.items(), key=lambda kv: (kv[1], kv[0]))
        if s > best * (1 - MIN_GAIN):
            path.append((f"(stop: best next {t}, {s:.4f})", s))
            break
        chosen.append(t)
        best = s
        path.append((f"+ {t}", s))
    return chosen, path


def table(rows: list[dict], cols: list[str]) -> str:
    df = pd.DataFrame(rows)[cols]
    return df.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def constants_block(model: gd.GlassDensityModel, n_rows: int, imelt_version: str) -> str:
    lines = [
        "# --- shipped fit, regenerated by `benchmarks/glass_density_fit.py --write` " + "-" * 16,
        f"# i-Melt NKCMAS density rows, train+valid ({n_rows} rows), imelt {imelt_version}",
        f"SHIPPED_RIDGE = {model.ridge!r}",
        f"SHIPPED_HUBER_G_CM3 = {model.huber_g_cm3!r}",
        "SHIPPED_COEFFICIENTS: dict[str, float] = {",
    ]
    lines += [f"    {k!r}: {v:.6f}," for k, v in model.coefficients().items()]
    lines += ["}", "# --- end of shipped fit " + "-" * 71]
    return "\n".join(lines)


def write_constants(block: str) -> None:
    text = MODULE.read_text()
    pat = re.compile(r"# --- shipped fit, .*?# --- end of shipped fit -+", re.S)
    if not pat.search(text):
        raise SystemExit(f"{MODULE}: shipped-fit markers not found")
    MODULE.write_text(pat.sub(lambda _: block, text, count=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emit-constants", action="store_true", help="print the constants block")
    ap.add_argument("--write", action="store_true", help="rewrite the block in glass_density.py")
    args = ap.parse_args(argv)
    from importlib import metadata

    df = load_density()
    tv = df["split"].isin(["train", "valid"]).to_numpy()
    dtv, dte = df[tv].reset_index(drop=True), df[~tv].reset_index(drop=True)
    xtv, ytv = dtv[list(COLS)].to_numpy(), dtv["value"].to_numpy()
    xte, yte = dte[list(COLS)].to_numpy(), dte["value"].to_numpy()
    groups = composition_groups(xtv)
    print(f"i-Melt density rows: {len(dtv)} train+valid in {len(np.unique(groups))} composition "
          f"groups (largest {np.bincount(groups).max()} rows), {len(dte)} test")

    terms, path = forward_select(xtv, ytv, groups)
    print("\nForward selection (grouped 10-fold CV RMSE, g/cm3, ridge "
          f"{SELECT_RIDGE:g}, Huber {HUBER} g/cm3):")
    for step, s in path:
        print(f"  {step:55s} {s:.4f}")
    cv_ridge = {r: rmse(oof(xtv, ytv, groups, terms, r), ytv) for r in RIDGES}
    best_cv = min(cv_ridge.values())
    ridge = max(r for r, v in cv_ridge.items() if v <= best_cv * (1 + RIDGE_TOL))
    print("\nRidge (grouped-CV RMSE): " + ", ".join(f"{r:g}: {v:.4f}" for r, v in cv_ridge.items())
          + f"  -> {ridge:g}")

    final = make(terms, ridge).fit(xtv, ytv)
    additive = make([], 0.0, fixed=None).fit(xtv, ytv)
    pred_cv = oof(xtv, ytv, groups, terms, ridge)
    pred_cv_add = oof(xtv, ytv, groups, [], 0.0, fixed=None)

    print("\nCoefficients (cm3/mol):")
    for k, v in final.coefficients().items():
        print(f"  {k:16s} {v:9.3f}")
    print("  additive model: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                            additive.coefficients().items()))

    fam_tv, fam_te = families(dtv), families(dte)
    rows = []
    for name in fam_tv:
        for label, mask, res in (
            ("grouped CV", fam_tv[name], pred_cv - ytv),
            ("grouped CV additive", fam_tv[name], pred_cv_add - ytv),
            ("test", fam_te[name], final.predict(xte) - yte),
            ("test additive", fam_te[name], additive.predict(xte) - yte),
        ):
            rows.append({"family": name, "set": label, **metrics(res[mask])})
    print("\nErrors (g/cm3; prediction - measurement):")
    print(table(rows, ["family", "set", "n", "rmse", "bias", "max", "p95"]))

    print("\nWhat each term buys (drop-one, refit with the same ridge):")
    abl = [{"model": "selected", "cv_rmse": rmse(pred_cv, ytv),
            "test_rmse": rmse(final.predict(xte), yte)}]
    for t in terms:
        rest = [u for u in terms if u != t]
        m = make(rest, ridge).fit(xtv, ytv)
        abl.append({"model": f"without {t}",
                    "cv_rmse": rmse(oof(xtv, ytv, groups, rest, ridge), ytv),
                    "test_rmse": rmse(m.predict(xte), yte)})
    abl.append({"model": "additive only", "cv_rmse": rmse(pred_cv_add, ytv),
                "test_rmse": rmse(additive.predict(xte), yte)})
    print(table(abl, ["model", "cv_rmse", "test_rmse"]))

    print("\nWorst glasses (grouped CV):")
    worst = dtv.assign(pred=pred_cv, err=pred_cv - ytv)
    worst = worst.reindex(worst["err"].abs().sort_values(ascending=False).index).head(8)
    fmt = "{:.4f}".format
    print(worst[[*COLS, "value", "pred", "err"]].to_string(index=False, float_format=fmt))
    print("\nWorst glasses (test):")
    wt = dte.assign(pred=final.predict(xte), err=final.predict(xte) - yte)
    wt = wt.reindex(wt["err"].abs().sort_values(ascending=False).index).head(5)
    print(wt[[*COLS, "value", "pred", "err"]].to_string(index=False, float_format=fmt))

    train = df["split"].eq("train").to_numpy()
    m_train = make(terms, ridge).fit(df.loc[train, list(COLS)].to_numpy(), df.loc[train, "value"])
    print(f"\nRefit on the train split only ({train.sum()} rows): test RMSE "
          f"{rmse(m_train.predict(xte), yte):.4f} g/cm3")

    ref = {"SiO2": {"SiO2": 1}, "Na2O.3SiO2": {"Na2O": 1, "SiO2": 3},
           "Na2O.2SiO2": {"Na2O": 1, "SiO2": 2}, "K2O.3SiO2": {"K2O": 1, "SiO2": 3},
           "NaAlSi3O8": {"Na2O": 1, "Al2O3": 1, "SiO2": 6},
           "CaAl2Si2O8": {"CaO": 1, "Al2O3": 1, "SiO2": 2},
           "CaMgSi2O6": {"CaO": 1, "MgO": 1, "SiO2": 2}}
    print("\nTextbook glasses (final fit): " + ", ".join(
        f"{k} {final.predict(gd._vector(v, k)[None])[0]:.3f}" for k, v in ref.items()))

    block = constants_block(final, len(dtv), metadata.version("imelt"))
    if args.emit_constants or args.write:
        print("\n" + block)
    if args.write:
        write_constants(block)
        print(f"\nwrote the shipped fit into {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
