"""Benchmark: re-score a fitted force field and the published sets at the fit's state point with
new starting cells and velocities, so the fitted set's R_chi is not the best of many noisy draws.

    VITRIFLOW_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/forcefield_fit_recheck.py \
        config/forcefield_fit_nimrod.yaml results/forcefield_fit/fitted.yaml --seeds 101 102 103

Prints, per seed (each its own starts and velocities, every set sharing them) and as mean ± sd,
the R_chi of the fitted set and of each set in the config's ``compare_with``. A reference made by
the run (``rdf_table``) must exist: run the fit's config first.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import yaml

from vitriflow.config import load_config, thaw
from vitriflow.forcefield_fit.evaluate import Evaluator, StatePoint
from vitriflow.forcefield_fit.reference import load_reference
from vitriflow.forcefield_fit.space import build_space, load_section
from vitriflow.potentials.classical_params import PARAMETER_SETS, load_parameter_file


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", help="run config with a forcefield_fit section")
    ap.add_argument("fitted", help="parameter file written by the fit")
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.config) as fh:
        settings = load_config(yaml.safe_load(fh))
    section = load_section(thaw(settings.section("forcefield_fit")))
    where = settings.derived["forcefield_fit"]  # a dataset, the user's file or the run's rdf table
    if where["reference_path"] is None:
        raise SystemExit(f"{a.config}: forcefield_fit reference not available: {where['reason']}")
    section["reference"]["path"] = where["reference_path"]
    space = build_space(section)
    reference = load_reference(section, space.counts)
    fitted = space.comparison_set(load_parameter_file(a.fitted))
    sets = [fitted] + [space.comparison_set(PARAMETER_SETS[n]) for n in section["compare_with"]]
    names = ["fitted"] + list(section["compare_with"])
    costs = {n: [] for n in names}
    for seed in a.seeds:
        section["budget"]["seed"] = seed
        sp = StatePoint.from_section(section, space.counts)
        base = space.parameter_set(space.base_values(), name="base")
        results = Evaluator(sp, reference, base, space.settings).evaluate(sets, 10.0)
        for n, r in zip(names, results, strict=True):
            costs[n].append(r.cost if r.status == "ok" else float("nan"))
        print(f"seed {seed}: " + ", ".join(f"{n} {costs[n][-1]:.4f}" for n in names), flush=True)
    for n in names:
        v = np.array(costs[n])
        print(f"{n:8s} R_chi {np.nanmean(v):.4f} ± {np.nanstd(v, ddof=1):.4f} (n={len(v)})")


if __name__ == "__main__":
    main()
