"""Neutron-weighted total structure factor from partial g_ab(r), and comparison with experiment.

Conventions (Keen, J. Appl. Cryst. 34 (2001) 172; Faber & Ziman 1965):

* Faber–Ziman partials ``S_ab(Q) = 1 + 4 pi rho0 int r^2 [g_ab(r) - 1] sin(Qr)/(Qr) M(r) dr``
  with the total number density rho0 and, optionally, the Lorch (1969) window
  ``M(r) = sin(pi r / r_max) / (pi r / r_max)`` that damps termination ripples.
* Total interference function, per atom,
  ``F(Q) = sum_ab c_a c_b b_a b_b [S_ab(Q) - 1]`` (sum over ordered species pairs).
  With coherent scattering lengths b in fm, ``b_a b_b`` is in fm^2 = 0.01 barn, so F(Q)/100 is
  the "interference differential cross section" in barn sr^-1 atom^-1 that Gudrun writes (the
  NIMROD silica file). F -> 0 at high Q and -> -<b>^2 (+ <b>^2 S(0)) at low Q.
* Normalised total ``S(Q) = F(Q) / <b>^2 + 1`` with ``<b> = sum_a c_a b_a``: -> 1 at high Q.

Agreement with experiment: Wright's R_chi (J. Non-Cryst. Solids 159 (1993) 264), as used in
the Liu thesis (ch. 7-9) for g(r), applied here to F(Q) on the experimental Q points:
``R_chi = sqrt( sum_Q [F_exp - F_sim]^2 / sum_Q F_exp^2 )``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from vitriflow.analysis.rdf import RDF, species_pairs

__all__ = [
    "FALLBACK_SOURCE",
    "FALLBACK_SCATTERING_LENGTHS_FM",
    "MissingScatteringLength",
    "load_experimental_fq",
    "load_scattering_lengths",
    "lorch",
    "mean_b",
    "neutron_fq",
    "partial_structure_factors",
    "r_chi",
]

# Bound coherent scattering lengths (fm, natural abundance) of common glass-forming elements,
# from V. F. Sears, Neutron News 3(3) (1992) 26 (NIST table). Used only when the configured
# table file is absent; results then say so in their provenance.
FALLBACK_SCATTERING_LENGTHS_FM: dict[str, float] = {
    "H": -3.739, "Li": -1.90, "B": 5.30, "C": 6.646, "N": 9.36, "O": 5.803, "F": 5.654,
    "Na": 3.63, "Mg": 5.375, "Al": 3.449, "Si": 4.1491, "P": 5.13, "K": 3.67, "Ca": 4.70,
    "Ti": -3.438, "Fe": 9.45, "Zn": 5.680, "Ge": 8.185, "Sr": 7.02, "Zr": 7.16, "Ba": 5.07,
    "Pb": 9.405,
}
FALLBACK_SOURCE = "built-in fallback table (Sears 1992, 22 glass elements)"


class MissingScatteringLength(KeyError):
    """An element has no coherent scattering length in the table in use."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def load_scattering_lengths(path: str | os.PathLike | None) -> tuple[dict[str, float], str]:
    """Coherent scattering lengths (fm) and a source label, from a CSV ``element,b_coh_fm`` or
    the public vitrum table (``Isotope;b`` with decimal commas, dataset
    ``neutron_scattering_lengths``).

    Falls back to the module table (labelled as such) when ``path`` is None or absent.
    """
    if path is None or not Path(path).is_file():
        return dict(FALLBACK_SCATTERING_LENGTHS_FM), FALLBACK_SOURCE
    with open(path, encoding="utf-8-sig") as fh:
        header = fh.readline()
    if ";" in header:
        df = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
        df = df.rename(columns={"Isotope": "element", "b": "b_coh_fm"})
    else:
        df = pd.read_csv(path, encoding="utf-8-sig")
    if not {"element", "b_coh_fm"} <= set(df.columns):
        raise ValueError(
            f"{path}: expected columns 'element,b_coh_fm' (or vitrum's 'Isotope;b'), got "
            f"{list(df.columns)}"
        )
    b = pd.to_numeric(df["b_coh_fm"], errors="coerce")
    bad = df.loc[b.isna(), "element"].tolist()
    if bad:
        raise ValueError(f"{path}: non-numeric b_coh_fm for {bad}")
    return dict(zip(df["element"].astype(str).str.strip(), b.astype(float), strict=True)), str(path)


def _b_of(elements, b: Mapping[str, float], source: str = "scattering-length table"):
    missing = sorted(el for el in elements if el not in b)
    if missing:
        raise MissingScatteringLength(
            f"no neutron coherent scattering length for {missing} in {source}; "
            "add a row 'element,b_coh_fm' to analysis.scattering_lengths"
        )
    return {el: float(b[el]) for el in elements}


def mean_b(concentrations: Mapping[str, float], b: Mapping[str, float],
           source: str = "table") -> float:
    """<b> = sum_a c_a b_a (fm)."""
    bb = _b_of(concentrations, b, source)
    return float(sum(c * bb[el] for el, c in concentrations.items()))


def lorch(r: np.ndarray, r_max: float) -> np.ndarray:
    """Lorch window sin(pi r/r_max)/(pi r/r_max)."""
    return np.sinc(np.asarray(r) / r_max)  # np.sinc(x) = sin(pi x)/(pi x)


def partial_structure_factors(
    g: RDF, q: np.ndarray, use_lorch: bool = True,
) -> dict[str, np.ndarray]:
    """Faber–Ziman S_ab(Q) for every pair of ``g`` (by its pair name)."""
    q = np.asarray(q, dtype=float)
    if np.any(q <= 0):
        raise ValueError("structure factor: Q grid must be > 0 (Å^-1)")
    r, dr = g.r, g.edges[1] - g.edges[0]
    window = lorch(r, g.edges[-1]) if use_lorch else np.ones_like(r)
    rho0 = g.number_density
    qr = np.outer(q, r)
    kernel = 4.0 * np.pi * rho0 * dr * (r**2 * window)[None, :] * np.sinc(qr / np.pi)
    return {name: 1.0 + kernel @ (gab - 1.0) for name, gab in g.partials.items()}


def neutron_fq(
    g: RDF, q: np.ndarray, b: Mapping[str, float], use_lorch: bool = True,
    source: str = "scattering-length table",
) -> tuple[np.ndarray, np.ndarray]:
    """(F(Q) in barn sr^-1 atom^-1, normalised S(Q)) of the neutron-weighted total.

    Raises MissingScatteringLength (naming the elements and the table) when an element of
    the structure has no scattering length.
    """
    conc = {el: c for el, c in g.concentrations.items() if c > 0}
    bb = _b_of(conc, b, source)
    sab = partial_structure_factors(g, q, use_lorch)
    f_fm2 = np.zeros_like(np.asarray(q, dtype=float))
    for a, c in species_pairs(conc):
        name = f"{a}-{c}"
        mult = 1.0 if a == c else 2.0
        f_fm2 += mult * conc[a] * conc[c] * bb[a] * bb[c] * (sab[name] - 1.0)
    b_mean = sum(conc[el] * bb[el] for el in conc)
    if b_mean == 0:
        raise ValueError(f"structure factor: <b> = 0 for composition {conc}; S(Q) undefined")
    return f_fm2 / 100.0, f_fm2 / b_mean**2 + 1.0


def load_experimental_fq(path: str | os.PathLike) -> pd.DataFrame:
    """Experimental F(Q): a CSV ``Q_invA,F_Q[,error]`` or a Gudrun ``.mint01`` file (header lines
    starting with '#', then Q, F(Q), error; dataset ``nimrod_silica_fq``); zero-padding rows
    dropped. One-line ValueError naming the file when it is neither."""
    with open(path) as fh:
        first = fh.readline()
    try:
        if first.startswith("#"):
            df = pd.read_csv(path, comment="#", sep=r"\s+", header=None,
                             names=["Q_invA", "F_Q", "error"])
        else:
            df = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: not an F(Q) table "
                         f"({' '.join(str(exc).split())[:120]})") from None
    if not {"Q_invA", "F_Q"} <= set(df.columns):
        raise ValueError(f"{path}: expected columns Q_invA,F_Q[,error]; got {list(df.columns)}")
    df[["Q_invA", "F_Q"]] = df[["Q_invA", "F_Q"]].apply(pd.to_numeric, errors="coerce")
    if df[["Q_invA", "F_Q"]].isna().any().any():
        raise ValueError(f"{path}: non-numeric Q_invA or F_Q values")
    pad = (df["F_Q"] == 0) & (df["error"] == 0 if "error" in df else True)
    return df.loc[~pad & (df["Q_invA"] > 0)].reset_index(drop=True)


def r_chi(
    q_sim: np.ndarray, f_sim: np.ndarray, q_exp: np.ndarray, f_exp: np.ndarray,
    q_range: tuple[float, float],
) -> float:
    """Wright's R_chi of a simulated curve against experiment, on the experimental points in
    ``q_range`` (the simulation is linearly interpolated; points outside its grid are dropped)."""
    q_exp, f_exp = np.asarray(q_exp, float), np.asarray(f_exp, float)
    lo = max(q_range[0], float(np.min(q_sim)))
    hi = min(q_range[1], float(np.max(q_sim)))
    sel = (q_exp >= lo) & (q_exp <= hi)
    if sel.sum() < 2:
        return float("nan")
    fs = np.interp(q_exp[sel], q_sim, f_sim)
    return float(np.sqrt(np.sum((f_exp[sel] - fs) ** 2) / np.sum(f_exp[sel] ** 2)))
