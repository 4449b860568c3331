"""X-ray-weighted total structure factor from Faber–Ziman partials.

Atomic form factors in the Cromer–Mann form (International Tables for Crystallography C,
Table 6.1.1.4): ``f(Q) = sum_{i=1..4} a_i exp(-b_i s^2) + c`` with ``s = sin(theta)/lambda =
Q / (4 pi)`` in Å^-1. With atomic fractions c_a and ``<f>(Q) = sum_a c_a f_a(Q)``, the
Faber–Ziman total is

    S_X(Q) = sum_ab w_ab(Q) S_ab(Q),   w_ab(Q) = c_a c_b f_a(Q) f_b(Q) / <f>(Q)^2

over ordered pairs (here over unordered pairs, with a factor 2 for a != b), so the weights sum
to 1 at every Q and S_X -> 1 at high Q. ``S_ab`` are the partials of
``vitriflow.analysis.scattering.partial_structure_factors``. Anomalous dispersion (f', f'')
and Compton scattering are ignored: they matter for the comparison with raw intensities, not
for the normalised S(Q) of a model.

Coefficient table: a CSV with columns ``Element,a1,b1,a2,b2,a3,b3,a4,b4,c`` (one row per
element, b in Å^2). The public table of that format is
``src/vitrum/x_ray_scattering_factor_coefficients.csv`` in the MIT-licensed repository
R-Chr/vitrum (International Tables values rounded to 3 significant figures, 98 elements);
``load_cromer_mann`` reads it verbatim.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vitriflow.analysis.rdf import RDF, species_pairs
from vitriflow.analysis.scattering import partial_structure_factors

__all__ = [
    "CROMER_MANN_COLUMNS",
    "CromerMann",
    "MissingFormFactor",
    "form_factor",
    "load_cromer_mann",
    "xray_sq",
    "xray_weights",
]

CROMER_MANN_COLUMNS = ("Element", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4", "c")


class MissingFormFactor(KeyError):
    """An element has no Cromer–Mann coefficients in the table in use."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class CromerMann:
    """Cromer–Mann coefficients per element: a (4,), b (4,) in Å^2, c; and their source."""

    a: Mapping[str, np.ndarray]
    b: Mapping[str, np.ndarray]
    c: Mapping[str, float]
    source: str

    @property
    def elements(self) -> list[str]:
        return sorted(self.c)


def load_cromer_mann(path: str | os.PathLike) -> CromerMann:
    """Read a Cromer–Mann coefficient CSV (``Element,a1,b1,...,a4,b4,c``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Cromer-Mann coefficient table not found; expected a CSV "
                                f"with columns {','.join(CROMER_MANN_COLUMNS)}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: not a readable CSV ({type(exc).__name__}); expected columns "
                         f"{','.join(CROMER_MANN_COLUMNS)}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in CROMER_MANN_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected "
                         f"{','.join(CROMER_MANN_COLUMNS)} (got {list(df.columns)})")
    el = df["Element"].astype(str).str.strip()
    dup = sorted(set(el[el.duplicated()]))
    if dup:
        raise ValueError(f"{path}: element(s) {dup} listed more than once; expected one row each")
    num = df.loc[:, list(CROMER_MANN_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    bad = el[num.isna().any(axis=1)].tolist()
    if bad:
        raise ValueError(f"{path}: non-numeric coefficient(s) for {bad}; expected numbers in "
                         f"{','.join(CROMER_MANN_COLUMNS[1:])}")
    arr = num.to_numpy(dtype=float)
    a = {e: arr[k, 0:8:2].copy() for k, e in enumerate(el)}
    b = {e: arr[k, 1:8:2].copy() for k, e in enumerate(el)}
    c = {e: float(arr[k, 8]) for k, e in enumerate(el)}
    return CromerMann(a=a, b=b, c=c, source=str(path))


def form_factor(element: str, q: np.ndarray, table: CromerMann) -> np.ndarray:
    """f(Q) (electrons) of one element on a Q grid (Å^-1)."""
    if element not in table.c:
        raise MissingFormFactor(f"no X-ray form factor for {element!r} in {table.source}; "
                                f"add a row {','.join(CROMER_MANN_COLUMNS)} for it")
    s2 = (np.asarray(q, dtype=float) / (4.0 * np.pi)) ** 2
    return np.exp(-np.outer(s2, table.b[element])) @ table.a[element] + table.c[element]


def xray_weights(
    concentrations: Mapping[str, float], q: np.ndarray, table: CromerMann,
) -> dict[str, np.ndarray]:
    """Q-dependent Faber–Ziman weights per unordered pair name ("O-Si"), summing to 1.

    ``w_ab = (2 - delta_ab) c_a c_b f_a f_b / <f>^2``; species with zero fraction are left out.
    """
    conc = {el: float(x) for el, x in concentrations.items() if x > 0}
    if not conc:
        raise ValueError("xray_weights: no species with a positive concentration")
    total = sum(conc.values())
    conc = {el: x / total for el, x in conc.items()}
    missing = sorted(el for el in conc if el not in table.c)
    if missing:
        raise MissingFormFactor(f"no X-ray form factor for {missing} in {table.source}; add rows "
                                f"{','.join(CROMER_MANN_COLUMNS)} for them")
    f = {el: form_factor(el, q, table) for el in conc}
    f_mean = sum(conc[el] * f[el] for el in conc)
    if np.any(f_mean == 0):
        raise ValueError(f"xray_weights: <f>(Q) = 0 on the Q grid for {conc}; S(Q) undefined")
    out = {}
    for a, b in species_pairs(conc):
        mult = 1.0 if a == b else 2.0
        out[f"{a}-{b}"] = mult * conc[a] * conc[b] * f[a] * f[b] / f_mean**2
    return out


def xray_sq(
    g: RDF, q: np.ndarray, table: CromerMann, use_lorch: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(S_X(Q), weights) of one g(r): the X-ray-weighted Faber–Ziman total S(Q)."""
    conc = {el: c for el, c in g.concentrations.items() if c > 0}
    w = xray_weights(conc, q, table)
    sab = partial_structure_factors(g, q, use_lorch)
    s = np.zeros_like(np.asarray(q, dtype=float))
    for name, wab in w.items():
        s += wab * sab[name]
    return s, w
