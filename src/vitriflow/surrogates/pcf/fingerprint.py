"""Composition + atom-pair fingerprint for the PCF surrogate (the one place it is defined).

Ayush et al. encode a glass and the pair whose g(r) is wanted as a 58-long k-hot vector: base
glass (3 flags), dopant identity and amount (3 flags + 3 fractions) and the atom pair (the upper
triangle of a 7x7 element matrix). Here the same information is kept in a form that generalises
to any oxide (or elemental) family:

``[ c_1 .. c_m | P_11 P_12 .. P_nn | x_A x_B ]``

- ``c_i``: mole fractions of the family's components (oxides such as ``SiO2``, or elements when
  a family is declared in elements); they sum to 1. The paper's base/dopant flags are implied
  (a forest splits on ``c_i > 0`` directly), and the dopant amount is its own fraction.
- ``P``: one-hot over the upper triangle (diagonal included) of the element x element matrix of
  the family's species, in alphabetical order: exactly the paper's pair matrix.
- ``x_A, x_B`` (optional, ``pair_fractions=True``): atomic fractions of the pair's two species
  in the glass, sorted like the pair name. They tell the forest how much of each species the
  pair involves, which a one-hot cannot.

Everything a caller can get wrong is refused with a one-line ``ValueError`` naming the value:
unknown components or elements, negative fractions, fractions that do not sum to 1, a pair
whose species is absent from the glass.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SUM_TOL = 1e-6


@lru_cache(maxsize=256)
def _elements_of(component: str) -> tuple[tuple[str, float], ...]:
    """Element amounts in one formula unit of ``component`` (via pymatgen)."""
    from pymatgen.core import Composition

    try:
        comp = Composition(component)
    except Exception as exc:  # pymatgen raises several types for bad formulas
        raise ValueError(f"pcf fingerprint: component {component!r} is not a valid "
                         f"formula ({exc})") from None
    if not comp.valid or len(comp) == 0:
        raise ValueError(f"pcf fingerprint: component {component!r} is not a valid formula")
    return tuple(sorted((el.symbol, float(n)) for el, n in comp.items()))


def pair_name(a: str, b: str) -> str:
    """Canonical pair name: the two element symbols sorted alphabetically (``O-Si``)."""
    x, y = sorted((a, b))
    return f"{x}-{y}"


def split_pair(pair: str) -> tuple[str, str]:
    parts = pair.split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"pcf fingerprint: pair {pair!r} is not of the form 'A-B'")
    return parts[0], parts[1]


def element_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Atomic fractions of elements for component mole fractions (e.g. oxides)."""
    totals: dict[str, float] = {}
    for comp, frac in fractions.items():
        for el, n in _elements_of(comp):
            totals[el] = totals.get(el, 0.0) + float(frac) * n
    norm = sum(totals.values())
    return {el: v / norm for el, v in sorted(totals.items())} if norm > 0 else {}


@dataclass(frozen=True)
class PCFFingerprint:
    """Encoder/decoder between (composition, pair) and a feature vector.

    ``components``: the family's components (oxides or elements) in a fixed order; ``species``
    is derived from them (all elements they contain, alphabetical).
    """

    components: tuple[str, ...]
    pair_fractions: bool = True
    species: tuple[str, ...] = field(init=False)
    pairs: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        comps = tuple(str(c) for c in self.components)
        if not comps:
            raise ValueError("pcf fingerprint: components: expected at least one oxide or element")
        if len(set(comps)) != len(comps):
            raise ValueError(f"pcf fingerprint: components: duplicates in {list(comps)}")
        els = sorted({el for c in comps for el, _ in _elements_of(c)})
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "species", tuple(els))
        pairs = [pair_name(a, b) for a, b in itertools.combinations_with_replacement(els, 2)]
        object.__setattr__(self, "pairs", tuple(pairs))

    # -- layout -------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return len(self.components) + len(self.pairs) + (2 if self.pair_fractions else 0)

    @property
    def feature_names(self) -> list[str]:
        names = [f"frac_{c}" for c in self.components] + [f"pair_{p}" for p in self.pairs]
        if self.pair_fractions:
            names += ["x_pair_A", "x_pair_B"]
        return names

    # -- validation ---------------------------------------------------------------------
    def _check_fractions(self, fractions: Mapping[str, float]) -> dict[str, float]:
        unknown = sorted(set(fractions) - set(self.components))
        if unknown:
            raise ValueError(
                f"pcf fingerprint: component(s) {unknown} not in the trained family "
                f"(known: {list(self.components)})"
            )
        clean = {}
        for c, v in fractions.items():
            v = float(v)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"pcf fingerprint: fraction of {c} is {v}; expected a finite "
                                 "value >= 0")
            clean[c] = v
        total = sum(clean.values())
        if abs(total - 1.0) > SUM_TOL:
            raise ValueError(f"pcf fingerprint: fractions sum to {total:.8g}; expected 1 (+/- "
                             f"{SUM_TOL})")
        return clean

    def _check_pair(self, pair: str, fractions: Mapping[str, float]) -> tuple[str, str]:
        a, b = split_pair(pair)
        for el in (a, b):
            if el not in self.species:
                raise ValueError(
                    f"pcf fingerprint: species {el!r} of pair {pair!r} is not in the trained "
                    f"family (known: {list(self.species)})"
                )
        if pair_name(a, b) != pair:
            raise ValueError(f"pcf fingerprint: pair {pair!r} must be written {pair_name(a, b)!r}")
        x = element_fractions(fractions)
        missing = [el for el in (a, b) if x.get(el, 0.0) <= 0]
        if missing:
            raise ValueError(f"pcf fingerprint: pair {pair!r} asks for {missing} absent from the "
                             f"glass {dict(fractions)}")
        return a, b

    # -- encode/decode ------------------------------------------------------------------
    def encode(self, fractions: Mapping[str, float], pair: str) -> np.ndarray:
        """Feature vector of one (composition, pair)."""
        fr = self._check_fractions(fractions)
        a, b = self._check_pair(pair, fr)
        vec = np.zeros(self.n_features)
        for i, c in enumerate(self.components):
            vec[i] = fr.get(c, 0.0)
        vec[len(self.components) + self.pairs.index(pair)] = 1.0
        if self.pair_fractions:
            x = element_fractions(fr)
            vec[-2], vec[-1] = x[a], x[b]
        return vec

    def encode_many(self, rows: Iterable[tuple[Mapping[str, float], str]]) -> np.ndarray:
        out = [self.encode(fr, pair) for fr, pair in rows]
        return np.vstack(out) if out else np.zeros((0, self.n_features))

    def decode(self, vec: Sequence[float]) -> tuple[dict[str, float], str]:
        """Inverse of :meth:`encode`: component fractions (non-zero ones) and the pair."""
        vec = np.asarray(vec, dtype=float)
        if vec.shape != (self.n_features,):
            raise ValueError(f"pcf fingerprint: vector of shape {vec.shape}; expected "
                             f"({self.n_features},)")
        m = len(self.components)
        onehot = vec[m : m + len(self.pairs)]
        if not (np.isin(onehot, (0.0, 1.0)).all() and onehot.sum() == 1):
            raise ValueError("pcf fingerprint: pair block is not one-hot")
        fractions = {c: float(v) for c, v in zip(self.components, vec[:m], strict=True) if v != 0}
        return fractions, self.pairs[int(np.argmax(onehot))]

    def to_dict(self) -> dict:
        return {"components": list(self.components), "pair_fractions": self.pair_fractions,
                "species": list(self.species), "feature_names": self.feature_names}
