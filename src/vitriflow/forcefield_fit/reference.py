"""Reference structures of a force-field fit and the cost R_chi of a candidate against them.

Partial g(r) references (a user CSV, or an ``analysis`` rdf table of one system of the pipeline)
are compared pair by pair as in the Liu thesis (eqs. 7-2, 7-3)::

    chi2_ab = sum_r [g_ref(r) - g_MD(r)]^2 / sum_r g_ref(r)^2,    R_chi = sqrt(mean_ab chi2_ab)

on the reference's own r points in [r_min, r_max] (the candidate's histogram interpolated there).
An experimental total F(Q) is compared with the candidate's neutron-weighted F(Q)
(``vitriflow.analysis.scattering.neutron_fq``) by Wright's R_chi over [q_min, q_max].
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vitriflow.analysis.rdf import RDF, pair_name

__all__ = ["Reference", "fit_reference", "load_reference", "partials_frame",
           "write_partials_csv"]


@dataclass
class Reference:
    """A reference structure and how candidates are scored against it."""

    kind: str  # "partials" or "neutron_fq"
    pairs: tuple[str, ...]
    r_min: float
    r_max: float
    source: str
    r: np.ndarray | None = None
    partials: dict[str, np.ndarray] = field(default_factory=dict)
    q: np.ndarray | None = None
    f_q: np.ndarray | None = None
    q_range: tuple[float, float] = (0.0, np.inf)
    scattering_lengths: Mapping[str, float] = field(default_factory=dict)
    scattering_source: str = ""

    def cost(self, g: RDF) -> tuple[float, dict[str, float]]:
        """(R_chi, per-term R_chi) of a candidate's averaged g(r): per pair sqrt(chi2_ab) for
        partials, ``{"F(Q)": R_chi}`` for a neutron reference."""
        if self.kind == "neutron_fq":
            from vitriflow.analysis.scattering import neutron_fq, r_chi

            f_sim, _ = neutron_fq(g, self.q, self.scattering_lengths, source=self.scattering_source)
            value = r_chi(self.q, f_sim, self.q, self.f_q, self.q_range)
            return value, {"F(Q)": value}
        sel = (self.r >= self.r_min) & (self.r <= self.r_max)
        chi2 = {}
        for name in self.pairs:
            ref = self.partials[name][sel]
            sim = np.interp(self.r[sel], g.r, g.partials[name])
            chi2[name] = float(np.sum((ref - sim) ** 2) / np.sum(ref**2))
        value = float(np.sqrt(np.mean(list(chi2.values()))))
        return value, {k: float(np.sqrt(v)) for k, v in chi2.items()}

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What the report draws: per pair (r, g) or ``{"F(Q)": (Q, F)}``."""
        if self.kind == "neutron_fq":
            return {"F(Q)": (self.q, self.f_q)}
        return {k: (self.r, self.partials[k]) for k in self.pairs}


def _resolve(path: str | os.PathLike, base_dir: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(base_dir) / p


def _partials_from_csv(path: Path, pairs: Sequence[str]
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from vitriflow.io import read_csv

    df, _ = read_csv(path)
    rcol = next((c for c in ("r_A", "r") if c in df.columns), None)
    if rcol is None:
        raise ValueError(f"{path}: no r column; expected 'r_A' or 'r' and one column per pair")
    columns = {}
    for col in df.columns:
        parts = str(col).strip().split("-")
        if len(parts) == 2 and all(parts):
            columns[pair_name(*parts)] = col
    missing = [p for p in pairs if p not in columns]
    if missing:
        raise ValueError(f"{path}: no column for pair(s) {missing} that the cost needs; columns: "
                         f"{list(df.columns)}")
    r = df[rcol].to_numpy(dtype=float)
    if r.size < 2 or not np.all(np.diff(r) > 0):
        raise ValueError(f"{path}: column {rcol} must increase strictly (at least 2 rows)")
    out = {}
    for p in pairs:
        g = df[columns[p]].to_numpy(dtype=float)
        if not np.all(np.isfinite(g)):
            raise ValueError(f"{path}: column {columns[p]} has non-finite values")
        out[p] = g
    return r, out


def _partials_from_rdf_table(path: Path, pairs: Sequence[str], composition_index: int):
    from vitriflow.io import read_csv, read_table

    df = read_table(path)[0] if path.suffix == ".parquet" else read_csv(path)[0]
    need = {"pair", "r_A", "g"}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: expected an analysis rdf table with columns {sorted(need)}; "
                         f"got {list(df.columns)}")
    if "composition_index" in df.columns:
        df = df[df["composition_index"] == composition_index]
        if df.empty:
            raise ValueError(f"{path}: no rows of composition_index {composition_index}")
    df = df.assign(pair=[pair_name(*str(p).split("-")) if "-" in str(p) else str(p)
                         for p in df["pair"]])
    missing = [p for p in pairs if p not in set(df["pair"])]
    if missing:
        raise ValueError(f"{path}: no rows for pair(s) {missing} that the cost needs")
    mean = df.groupby(["pair", "r_A"], sort=True)["g"].mean()
    r = np.asarray(mean.loc[pairs[0]].index, dtype=float)
    out = {}
    for p in pairs:
        s = mean.loc[p]
        out[p] = np.interp(r, np.asarray(s.index, dtype=float), s.to_numpy(dtype=float))
    return r, out


def load_reference(section: Mapping[str, Any], counts: Mapping[str, int],
                   base_dir: str | os.PathLike = ".", path: str | os.PathLike | None = None
                   ) -> Reference:
    """The reference of a validated ``forcefield_fit`` section (``path`` overrides
    ``reference.path``, e.g. the rdf table the workflow wires in). Raises ValueError naming the
    file and what it lacks."""
    from vitriflow.forcefield_fit.space import required_pairs

    ref = section["reference"]
    path = _resolve(path if path is not None else ref["path"], base_dir)
    if not path.is_file():
        raise ValueError(f"reference file {str(path)!r} does not exist")
    pairs = tuple(required_pairs(section, counts))
    common = dict(pairs=pairs, r_min=float(ref["r_min"]), r_max=float(ref["r_max"]),
                  source=str(path))
    if ref["kind"] == "partials_csv":
        r, partials = _partials_from_csv(path, pairs)
        return Reference("partials", r=r, partials=partials, **common)
    if ref["kind"] == "rdf_table":
        r, partials = _partials_from_rdf_table(path, pairs, ref["composition_index"])
        return Reference("partials", r=r, partials=partials, **common)
    from vitriflow.analysis.scattering import _b_of, load_experimental_fq, load_scattering_lengths

    exp = load_experimental_fq(path)
    lengths = ref["scattering_lengths"]
    b, b_source = load_scattering_lengths(_resolve(lengths, base_dir) if lengths else None)
    _b_of(counts, b, b_source)  # every element needs a scattering length
    sel = (exp["Q_invA"] >= ref["q_min"]) & (exp["Q_invA"] <= ref["q_max"])
    if int(sel.sum()) < 2:
        raise ValueError(f"{path}: fewer than 2 points in Q range [{ref['q_min']}, {ref['q_max']}]")
    return Reference("neutron_fq", q=exp.loc[sel, "Q_invA"].to_numpy(float),
                     f_q=exp.loc[sel, "F_Q"].to_numpy(float),
                     q_range=(float(ref["q_min"]), float(ref["q_max"])),
                     scattering_lengths=b, scattering_source=b_source, **common)


def fit_reference(section: Mapping[str, Any], base_dir: str | os.PathLike = ".",
                  path: str | os.PathLike | None = None) -> Reference:
    """The reference of a (raw or validated) ``forcefield_fit`` section, e.g. for the report."""
    from vitriflow.config import thaw
    from vitriflow.forcefield_fit.space import build_space, load_section

    section = load_section(thaw(section))
    return load_reference(section, build_space(section, base_dir).counts, base_dir, path)


def partials_frame(g: RDF, pairs: Sequence[str] | None = None):
    """A wide table r_A + one column per pair (the ``partials_csv`` reference format)."""
    import pandas as pd

    names = list(pairs) if pairs is not None else list(g.partials)
    return pd.DataFrame({"r_A": g.r, **{p: g.partials[p] for p in names}})


def write_partials_csv(g: RDF, path: str | os.PathLike, prov: Mapping[str, Any],
                       pairs: Sequence[str] | None = None) -> None:
    """Write partial g(r) as a reference CSV (with the provenance comment line)."""
    from vitriflow.io import write_csv

    write_csv(partials_frame(g, pairs), path, prov, float_format="%.6g")
