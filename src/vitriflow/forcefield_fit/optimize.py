"""Batched Bayesian optimisation of a force field against a reference structure, resumable.

Rounds, in order: ``compare`` (the published sets of ``compare_with``, for the report; not part
of the search), ``initial`` (a scrambled-Sobol design of ``initial_points`` in the unit cube of
the free parameters), ``bo`` (``rounds`` x ``q`` candidates from a q-batch acquisition on a
Gaussian process of the evaluated points), ``refine`` (L-BFGS-B minimisation of the process mean
from the best evaluated points, the minima evaluated by MD, as the thesis refines with conjugate
gradients on the interpolated cost). The candidates of a round are one torch-sim batch.

Every round's evaluations are appended to ``history.parquet`` (and their g(r) and bond-angle
distributions to ``curves.parquet``/``angles.parquet``) atomically when the round finishes. The
candidates of a round depend only on the history before it and on seeds derived from
``budget.seed`` and the round, so a fit killed at any point resumes at its first unfinished round
and ends with the same history as an uninterrupted one (CPU). A history written for other
settings or another reference is not resumed. The best evaluated point (initial, bo or refine)
wins and is written as a ``buckingham`` parameter file.

Gaussian process: BoTorch ``SingleTaskGP`` on the unit cube, outcome ``-log R_chi``
(``cost_transform: log``) or ``-R_chi``, standardised; failed candidates (recorded with
``failure_cost``) enter at the worst R_chi evaluated so far.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("vitriflow.forcefield_fit")

__all__ = ["FitResult", "read_history", "run_fit"]

HISTORY, CURVES, ANGLES = "history.parquet", "curves.parquet", "angles.parquet"
FITTED, SUMMARY = "fitted.yaml", "summary.json"
SEARCH_KINDS = ("initial", "bo", "refine")


@dataclass
class FitResult:
    """What a fit produced (also on disk under ``workdir``)."""

    history: pd.DataFrame
    curves: pd.DataFrame
    angles: pd.DataFrame
    best: dict[str, Any]
    parameter_set: Any  # ParameterSet of the best evaluated point
    space: Any  # FitSpace
    reference: Any  # Reference
    workdir: Path
    summary: dict[str, Any]


# ----------------------------------------------------------------------------- history files
def read_history(workdir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """(history, curves, angles, provenance of the history) of a fit directory."""
    from vitriflow.io import read_table

    workdir = Path(workdir)
    hist, prov = read_table(workdir / HISTORY)
    curves = read_table(workdir / CURVES)[0] if (workdir / CURVES).is_file() else pd.DataFrame()
    angles = read_table(workdir / ANGLES)[0] if (workdir / ANGLES).is_file() else pd.DataFrame()
    return hist, curves, angles, prov


def _fit_digest(section: Mapping[str, Any], reference) -> str:
    import hashlib

    from vitriflow.config import thaw
    from vitriflow.io import sha256_file

    text = json.dumps(thaw(section), sort_keys=True, default=str)
    ref = sha256_file(reference.source) if Path(reference.source).is_file() else reference.source
    return hashlib.sha256(f"{text}|{ref}".encode()).hexdigest()[:16]


def _load_previous(workdir: Path, digest: str):
    if not (workdir / HISTORY).is_file():
        return None
    try:
        hist, curves, angles, prov = read_history(workdir)
    except Exception as exc:  # noqa: BLE001 - a damaged history costs its rounds, never the fit
        log.warning("fit history in %s unreadable (%s); starting afresh", workdir, exc)
        return None
    if prov.get("fit_digest") != digest:
        log.warning("fit history in %s belongs to other settings or another reference; "
                    "starting afresh", workdir)
        return None
    done = set(hist["round"])
    curves = curves[curves["eval_id"].isin(hist["eval_id"])] if len(curves) else curves
    angles = angles[angles["eval_id"].isin(hist["eval_id"])] if len(angles) else angles
    log.info("resuming the fit in %s: rounds %s done (%d evaluations)", workdir, sorted(done),
             len(hist))
    return hist, curves, angles


# ----------------------------------------------------------------------------- proposals
def _outcome(cost: np.ndarray, transform: str) -> np.ndarray:
    """What the process models (to be maximised)."""
    return -np.log(cost) if transform == "log" else -np.asarray(cost, dtype=float)


def _gp_targets(cost: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """Costs the process is trained on: a failed candidate counts as the worst R_chi evaluated
    so far (at most its penalty), so that one blow-up does not make the whole surface look
    rough (a cliff of penalty values shortens every length scale)."""
    cost = np.asarray(cost, dtype=float).copy()
    if failed.any() and (~failed).any():
        cost[failed] = np.minimum(cost[failed], cost[~failed].max())
    return cost


def _fit_gp(x: np.ndarray, cost: np.ndarray, transform: str):
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    tx = torch.as_tensor(x, dtype=torch.float64)
    ty = torch.as_tensor(_outcome(cost, transform), dtype=torch.float64)[:, None]
    gp = SingleTaskGP(tx, ty, outcome_transform=Standardize(m=1))
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    return gp


def _search_rows(hist: pd.DataFrame) -> pd.DataFrame:
    return hist[hist["kind"].isin(SEARCH_KINDS)]


def sobol_design(dim: int, n: int, seed: int) -> np.ndarray:
    """``n`` points of a scrambled Sobol sequence in the unit cube (seeded)."""
    import torch
    from torch.quasirandom import SobolEngine

    return SobolEngine(dim, scramble=True, seed=seed).draw(n, dtype=torch.float64).numpy()


def propose_batch(x: np.ndarray, cost: np.ndarray, budget: Mapping[str, Any], transform: str,
                  seed: int) -> np.ndarray:
    """``budget['q']`` new unit-cube points maximising the q-batch acquisition."""
    import torch
    from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
    from botorch.optim import optimize_acqf
    from botorch.sampling import SobolQMCNormalSampler

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gp = _fit_gp(x, cost, transform)
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([budget["mc_samples"]]), seed=seed)
        tx = torch.as_tensor(x, dtype=torch.float64)
        if budget["acquisition"] == "qlognei":
            acq = qLogNoisyExpectedImprovement(gp, X_baseline=tx, sampler=sampler,
                                               prune_baseline=True)
        else:
            best = float(_outcome(cost, transform).max())
            acq = qLogExpectedImprovement(gp, best_f=best, sampler=sampler)
        d = x.shape[1]
        bounds = torch.stack([torch.zeros(d, dtype=torch.float64),
                              torch.ones(d, dtype=torch.float64)])
        cand, _ = optimize_acqf(acq, bounds=bounds, q=budget["q"],
                                num_restarts=budget["num_restarts"],
                                raw_samples=budget["raw_samples"],
                                options={"seed": seed, "batch_limit": 8, "maxiter": 200})
    return np.clip(cand.detach().cpu().numpy().astype(float), 0.0, 1.0)


def refine_points(x: np.ndarray, cost: np.ndarray, refinement: Mapping[str, Any], transform: str,
                  seed: int) -> np.ndarray:
    """Local minima of the process mean (L-BFGS-B within ``radius`` of each start, in the unit
    cube) from the ``starts`` best points; up to ``points`` distinct ones not evaluated before,
    lowest predicted cost first."""
    import torch
    from scipy.optimize import minimize

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gp = _fit_gp(x, cost, transform)
    gp.eval()

    def neg_mean(u):
        t = torch.as_tensor(u, dtype=torch.float64)[None].requires_grad_(True)
        m = gp.posterior(t).mean.sum()
        (g,) = torch.autograd.grad(m, t)
        return -float(m.detach()), -g[0].detach().numpy().astype(float)

    order = np.argsort(cost, kind="stable")[: refinement["starts"]]
    found = []
    rad = refinement["radius"]
    for x0 in x[order]:
        box = [(max(0.0, v - rad), min(1.0, v + rad)) for v in x0]
        res = minimize(neg_mean, x0, jac=True, method="L-BFGS-B", bounds=box)
        found.append((float(res.fun), np.clip(res.x, 0.0, 1.0)))
    found.sort(key=lambda t: t[0])
    out: list[np.ndarray] = []
    for _, u in found:
        if any(np.max(np.abs(u - v)) < 1e-3 for v in out):
            continue
        if np.min(np.max(np.abs(x - u), axis=1)) < 1e-9:
            continue
        out.append(u)
        if len(out) == refinement["points"]:
            break
    return np.array(out).reshape(-1, x.shape[1])


# ----------------------------------------------------------------------------- rounds
def _round_plan(section: Mapping[str, Any]) -> list[tuple[int, str]]:
    plan = [(0, "compare"), (1, "initial")]
    n = section["budget"]["rounds"]
    plan += [(2 + i, "bo") for i in range(n)]
    plan += [(2 + n + i, "refine") for i in range(section["refinement"]["rounds"])]
    return plan


def _angle_rows(eval_id: int, result, sp) -> list[pd.DataFrame]:
    """Bond-angle distributions of a candidate's frames (cation-anion cutoffs at the first
    minimum of its own g(r)); ``[]`` when it has none."""
    return [pd.DataFrame({"eval_id": eval_id, "triplet": t, "theta_deg": th, "p": p})
            for t, (th, p) in (result.angles or {}).items()]


def run_fit(section: Mapping[str, Any], workdir: str | Path, *, base_dir: str | Path = ".",
            reference_path: str | Path | None = None, device: str = "cpu",
            stop_after_rounds: int | None = None, evaluator=None) -> FitResult:
    """Run (or resume) the fit of a ``forcefield_fit`` section, writing into ``workdir``.

    ``reference_path`` overrides ``reference.path`` (the workflow passes the rdf table of
    ``reference.system``). ``stop_after_rounds`` (testing) raises ``KeyboardInterrupt`` after
    that many rounds were evaluated by this call, as a killed job would stop.
    """
    from vitriflow.config import thaw
    from vitriflow.forcefield_fit.evaluate import Evaluator, StatePoint
    from vitriflow.forcefield_fit.reference import load_reference
    from vitriflow.forcefield_fit.space import check_config, load_section

    section = load_section(thaw(section))
    if reference_path is not None:
        section["reference"]["path"] = str(reference_path)
    space = check_config(section, base_dir=base_dir)
    reference = load_reference(section, space.counts, base_dir=base_dir)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    digest = _fit_digest(section, reference)
    sp = StatePoint.from_section(section, space.counts)
    own_evaluator = evaluator is None
    if own_evaluator:
        base = space.parameter_set(space.base_values(), name=f"{space.base.name}-base")
        evaluator = Evaluator(sp, reference, base, space.settings, device=device)
    try:
        return _run_rounds(section, space, reference, sp, evaluator, workdir, digest,
                           stop_after_rounds)
    finally:
        if own_evaluator:
            evaluator.close()  # worker processes, if any


def _run_rounds(section, space, reference, sp, evaluator, workdir, digest, stop_after_rounds):
    """The rounds not yet in the history of ``workdir``, each stored as it finishes."""
    from vitriflow.forcefield_fit.evaluate import derived_seed
    from vitriflow.io import provenance, write_json, write_table
    from vitriflow.potentials.classical_params import PARAMETER_SETS, write_parameter_file

    budget, transform = section["budget"], section["cost_transform"]
    seed = budget["seed"]
    failure_cost = float(section["failure_cost"])
    names = list(space.names)
    previous = _load_previous(workdir, digest)
    hist, curves, angles = previous if previous is not None else (
        pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    done = set(hist["round"]) if len(hist) else set()
    walls: dict[str, float] = {}
    evaluated = 0
    for rnd, kind in _round_plan(section):
        if rnd in done:
            continue
        search = _search_rows(hist) if len(hist) else hist
        x_prev = search[[f"u_{n}" for n in names]].to_numpy(float) if len(search) else None
        c_prev = (_gp_targets(search["cost"].to_numpy(float), search["status"].to_numpy() != "ok")
                  if len(search) else None)
        if kind == "compare":
            sets = [space.comparison_set(PARAMETER_SETS[n]) for n in section["compare_with"]]
            units = [None] * len(sets)
        else:
            if kind == "initial":
                u = sobol_design(space.dim, budget["initial_points"], derived_seed(seed, "sobol"))
            elif kind == "bo":
                u = propose_batch(x_prev, c_prev, budget, transform, derived_seed(seed, "bo", rnd))
            else:
                ok = search["status"].to_numpy() == "ok"
                u = refine_points(x_prev[ok] if ok.any() else x_prev,
                                  c_prev[ok] if ok.any() else c_prev,
                                  section["refinement"], transform,
                                  derived_seed(seed, "refine", rnd))
            units = list(u)
            first = int(hist["eval_id"].max()) + 1 if len(hist) else 0
            sets = [space.parameter_set(space.from_unit(v), name=f"eval-{first + i}")
                    for i, v in enumerate(units)]
        if not sets:
            continue
        t0 = time.perf_counter()
        results = evaluator.evaluate(sets, failure_cost)
        walls[str(rnd)] = round(time.perf_counter() - t0, 2)
        first = int(hist["eval_id"].max()) + 1 if len(hist) else 0
        rows, new_curves, new_angles = [], [], []
        for i, (p, u, res) in enumerate(zip(sets, units, results, strict=True)):
            eval_id = first + i
            values = space.base_values(p) if u is None else space.from_unit(u)
            row = {"eval_id": eval_id, "round": rnd, "kind": kind,
                   "name": p.name if kind == "compare" else f"eval-{eval_id}",
                   "status": res.status, "reason": res.reason, "cost": float(res.cost),
                   "n_frames": int(res.n_frames)}
            row.update({f"term_{t}": float(res.terms.get(t, math.nan))
                        for t in _terms(reference)})
            row.update({n: float(values[n]) for n in names})
            row.update({f"u_{n}": (math.nan if u is None else float(u[k]))
                        for k, n in enumerate(names)})
            rows.append(row)
            if res.rdf is not None:
                for pair, g in res.rdf.partials.items():
                    new_curves.append(pd.DataFrame({"eval_id": eval_id, "pair": pair,
                                                    "r_A": res.rdf.r, "g": g}))
            new_angles += _angle_rows(eval_id, res, sp)
        hist = pd.concat([hist, pd.DataFrame(rows)], ignore_index=True)
        if new_curves:
            curves = pd.concat([curves, *new_curves], ignore_index=True)
        if new_angles:
            angles = pd.concat([angles, *new_angles], ignore_index=True)
        prov = provenance(stage="forcefield_fit", config=section, inputs=[reference.source],
                          seed=seed, fit_digest=digest, round_wall_s=walls,
                          atom_steps=evaluator.atom_steps)
        # curves and angles first: the history is what marks a round done
        write_table(curves, workdir / CURVES, prov)
        write_table(angles, workdir / ANGLES, prov)
        write_table(hist, workdir / HISTORY, prov)
        search = _search_rows(hist)
        best_cost = float(search["cost"].min()) if len(search) else math.nan
        log.info("round %d (%s): %d candidates, %d failed, best R_chi %.4g, %.1f s", rnd, kind,
                 len(rows), sum(r["status"] != "ok" for r in rows), best_cost, walls[str(rnd)])
        evaluated += 1
        if stop_after_rounds is not None and evaluated >= stop_after_rounds:
            raise KeyboardInterrupt(f"stopped after {evaluated} rounds (test)")
    return _finish(section, space, reference, hist, curves, angles, workdir, digest, sp,
                   write_parameter_file, write_json, provenance)


def _terms(reference) -> list[str]:
    return ["F(Q)"] if reference.kind == "neutron_fq" else list(reference.pairs)


def _finish(section, space, reference, hist, curves, angles, workdir, digest, sp,
            write_parameter_file, write_json, provenance) -> FitResult:
    search = _search_rows(hist)
    ok = search[search["status"] == "ok"]
    if ok.empty:
        raise RuntimeError(f"forcefield_fit: every one of {len(search)} candidates failed; first "
                           f"reason: {search['reason'].iloc[0] if len(search) else 'none run'}")
    best = ok.sort_values(["cost", "eval_id"], kind="stable").iloc[0].to_dict()
    values = {n: float(best[n]) for n in space.names}
    pset = space.parameter_set(values, name=f"fit-{space.base.name}")
    compare = hist[hist["kind"] == "compare"]
    summary = {
        "best": {"eval_id": int(best["eval_id"]), "round": int(best["round"]),
                 "kind": best["kind"], "cost": float(best["cost"]), "parameters": values,
                 "terms": {k[5:]: float(v) for k, v in best.items() if k.startswith("term_")}},
        "compare": {r["name"]: {"cost": float(r["cost"]), "status": r["status"]}
                    for r in compare.to_dict("records")},
        "evaluations": int(len(search)), "failed": int((search["status"] != "ok").sum()),
        "free_parameters": list(space.names), "reference": reference.source,
        "reference_kind": reference.kind, "fit_digest": digest,
        "state_point": {k: v for k, v in section["state_point"].items()},
        "charges": dict(pset.charges),
    }
    prov = provenance(stage="forcefield_fit", config=section, inputs=[reference.source],
                      seed=section["budget"]["seed"], fit_digest=digest,
                      r_chi=float(best["cost"]), eval_id=int(best["eval_id"]))
    write_parameter_file(pset, workdir / FITTED, provenance=prov)
    write_json({**summary, "provenance": prov}, workdir / SUMMARY)
    return FitResult(hist, curves, angles, best, pset, space, reference, workdir, summary)
