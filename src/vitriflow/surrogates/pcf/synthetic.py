"""Synthetic families of peaked g(r) curves, for tests and benchmarks only.

The workflow never uses these: the report is built from the analysis stage's RDFs. The curves
have the shape of glass partial RDFs (zero core, a first coordination peak, damped oscillation
to 1) with peak positions, heights and widths that vary smoothly with composition and pair,
so a surrogate can learn them and a test can check that it did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitriflow.surrogates.pcf.fingerprint import element_fractions, pair_name


def peaked_curve(r: np.ndarray, r0: float, height: float, width: float) -> np.ndarray:
    """Zero below the core, a Gaussian first peak at ``r0``, damped oscillation to 1 beyond."""
    core = 1.0 / (1.0 + np.exp(-(r - (r0 - 2.5 * width)) / (0.3 * width)))
    peak = height * np.exp(-0.5 * ((r - r0) / width) ** 2)
    tail = 1.0 + 0.4 * np.exp(-(r - r0) / 1.5) * np.cos(2 * np.pi * (r - r0) / (1.6 * r0) - 0.5)
    return np.clip(core * (tail + peak - 1.0 * np.exp(-0.5 * ((r - r0) / width) ** 2)), 0, None)


_RADIUS = {"O": 1.0, "Si": 0.6, "B": 0.4, "Na": 1.35, "Al": 0.75, "Ba": 1.75, "Ti": 0.95,
           "Zn": 0.95, "Ca": 1.3, "Mg": 0.95, "K": 1.6, "Li": 0.9}


def synthetic_family(
    compositions: list[dict[str, float]], r: np.ndarray, replicas: int = 2, noise: float = 0.02,
    seed: int = 0, system: str = "synthetic",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables shaped like the DAG's ``compositions.parquet`` and ``rdf.parquet`` for a family.

    Every partial pair of the species present is produced; ``noise`` is the per-point replica
    noise (relative), so replica averaging and spread can be exercised.
    """
    rng = np.random.default_rng(seed)
    comp_rows, rdf_rows = [], []
    for ci, fr in enumerate(compositions):
        x = element_fractions(fr)
        row = {"composition_index": ci,
               "label": "-".join(f"{k}{v:.3f}" for k, v in sorted(fr.items())), "formula": "",
               "n_atoms": 100}
        row.update({f"oxide_{k}": float(v) for k, v in fr.items()})
        row.update({f"x_{k}": float(v) for k, v in x.items()})
        comp_rows.append(row)
        els = sorted(x)
        for i, a in enumerate(els):
            for b in els[i:]:
                pair = pair_name(a, b)
                cation_o = "O" in (a, b) and a != b
                r0 = _RADIUS.get(a, 1.0) + _RADIUS.get(b, 1.0) + (0.0 if cation_o else 0.9)
                r0 *= 1.0 + 0.05 * (x.get("Na", 0) - x.get("Si", 0) + x.get("Ba", 0))
                height = (6.0 if cation_o else 2.2) * (1.0 + 1.5 * (0.3 - min(x[a], x[b])))
                width = 0.06 * r0 * (1.0 + 0.5 * x.get("Na", 0))
                base = peaked_curve(r, r0, height, width)
                for rep in range(replicas):
                    g = np.clip(base * (1 + noise * rng.standard_normal(len(r))), 0, None)
                    for rr, gg in zip(r, g, strict=True):
                        rdf_rows.append((f"{system}-c{ci:04d}-r{rep:02d}", ci, rep, row["label"],
                                         pair, float(rr), float(gg)))
    comps = pd.DataFrame(comp_rows).fillna(0.0)
    rdf = pd.DataFrame(rdf_rows, columns=["structure_id", "composition_index", "replica", "label",
                                          "pair", "r_A", "g"])
    return comps, rdf


def doped_silicate_compositions(dopants=("BaO", "TiO2", "ZnO"),
                                amounts=(0.02, 0.05, 0.1, 0.15, 0.2),
                                bases=({"SiO2": 1.0},
                                       {"SiO2": 0.6, "B2O3": 0.2, "Na2O": 0.2})) -> list[dict]:
    """The paper's family: silicate and NBS base glasses with one dopant at several amounts."""
    out = []
    for base in bases:
        for d in dopants:
            for a in amounts:
                fr = {k: v * (1 - a) for k, v in base.items()}
                fr[d] = a
                out.append(fr)
    return out
