"""Compositions: parsing, normalisation, grids and integer cell stoichiometry.

A composition is a mixture of *units* with mole fractions: oxide units for glasses
(``Na2O-3SiO2`` = 25 Na2O + 75 SiO2), elements for alloy/binary scans (``Cu0.3Zr0.7`` on a grid),
or a single formula (``Ti2O3``). Units are kept whole when a cell is built, so an oxide glass
stays charge-neutral. Every unit is parsed and checked by pymatgen.

Accepted inputs (strings or mappings):
- ``"Na2O-3SiO2"``: units joined by ``-``, each with an optional leading multiplier;
- ``"(Na2O)0.25(SiO2)0.75"``: parenthesised units with trailing amounts;
- ``"Ti2O3"`` or ``"SiO2"``: one formula, one unit;
- ``{"SiO2": 75, "Na2O": 25}``: mol% (sum 100) or mole fractions (sum 1).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from pymatgen.core import Composition as PmgComposition
from pymatgen.core import Element

SUM_TOLERANCE = 0.005  # relative tolerance on the sum of fractions (or of mol% / 100)
MIN_FORMULA_UNITS = 4  # fewer units per cell cannot make a disordered structure

_PAREN_UNIT = re.compile(r"\(([^()]+)\)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)")
_MULTIPLIER = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?=[A-Z(])")


class CompositionError(ValueError):
    """A composition that cannot be parsed, is not physical, or does not fit a cell."""


def _check_unit(unit: str, where: str) -> PmgComposition:
    """Parse one unit formula with pymatgen, refusing unknown elements with a clear message."""
    symbols = re.findall(r"[A-Z][a-z]?", unit)
    if not symbols:
        raise CompositionError(f"{where}: {unit!r} is not a chemical formula")
    # typos that pymatgen would read as other chemistry: Si02 (digit zero) is Si, Na2O.3SiO2
    # and 'Na2O 3SiO2' are single formulas
    if re.search(r"(?<=[A-Za-z)])0(?=\d|[A-Z(]|$)", unit):
        raise CompositionError(f"{where}: {unit!r} has a count starting with 0 (the digit zero "
                               "where the letter O was meant?)")
    if re.search(r"\s|(?<=[A-Za-z)])\.", unit):
        raise CompositionError(f"{where}: {unit!r} mixes units with a space or '.'; write e.g. "
                               "Na2O-3SiO2 or (Na2O)0.25(SiO2)0.75")
    for sym in symbols:
        if not Element.is_valid_symbol(sym):
            raise CompositionError(f"{where}: unknown element {sym!r} in {unit!r}")
    try:
        comp = PmgComposition(unit)
    except Exception as exc:  # pymatgen raises several types for bad formulas
        raise CompositionError(f"{where}: cannot parse formula {unit!r} ({exc})") from exc
    if comp.num_atoms <= 0:
        raise CompositionError(f"{where}: formula {unit!r} has no atoms")
    return comp


def _normalise(amounts: dict[str, float], where: str,
               percent: bool | None = None) -> dict[str, float]:
    """Check non-negative amounts that sum to 1 (fractions) or 100 (mol%); return fractions."""
    for unit, value in amounts.items():
        if not isinstance(value, int | float) or math.isnan(value):
            raise CompositionError(f"{where}: amount of {unit} must be a number, got {value!r}")
        if value < 0:
            raise CompositionError(f"{where}: negative amount {value} for {unit}")
    total = sum(amounts.values())
    if total <= 0:
        raise CompositionError(
            f"{where}: amounts sum to {total}; expected 1 (fractions) or 100 (mol%)")
    if percent is None:
        percent = abs(total - 100.0) <= 100.0 * SUM_TOLERANCE
        if not percent and abs(total - 1.0) > SUM_TOLERANCE:
            raise CompositionError(
                f"{where}: amounts sum to {total:g}; expected 1 (mole fractions) or 100 (mol%)"
            )
    return {u: v / total for u, v in amounts.items() if v > 0}


def _combine(parts: Sequence[tuple[str, float]], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for unit, amount in parts:
        comp = _check_unit(unit, where)
        key = comp.reduced_formula if len(comp) == 1 else unit.strip()
        out[key] = out.get(key, 0.0) + amount
    return out


@dataclass(frozen=True)
class GlassComposition:
    """A normalised mixture of units (oxides, elements or formulas) with mole fractions."""

    units: tuple[tuple[str, float], ...]
    label: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def fractions(self) -> dict[str, float]:
        return dict(self.units)

    def element_amounts(self) -> dict[str, float]:
        """Moles of each element per mole of mixture."""
        out: dict[str, float] = {}
        for unit, x in self.units:
            for el, n in PmgComposition(unit).get_el_amt_dict().items():
                out[el] = out.get(el, 0.0) + x * n
        return out

    def element_fractions(self) -> dict[str, float]:
        """Atomic fractions of each element, sorted by symbol."""
        amounts = self.element_amounts()
        total = sum(amounts.values())
        return {el: amounts[el] / total for el in sorted(amounts)}

    @property
    def pymatgen(self) -> PmgComposition:
        return PmgComposition(self.element_amounts())

    @property
    def reduced_formula(self) -> str:
        return self.pymatgen.reduced_formula

    @property
    def elements(self) -> list[str]:
        return sorted(self.element_amounts())

    def is_oxide_mixture(self) -> bool:
        """True when every unit is a binary oxide (so oxide mole fractions are meaningful)."""
        for unit, _ in self.units:
            els = set(PmgComposition(unit).get_el_amt_dict())
            if "O" not in els or len(els) != 2:
                return False
        return True


def parse_composition(spec: str | Mapping[str, float],
                      where: str = "composition") -> GlassComposition:
    """Parse any accepted composition input into a normalised ``GlassComposition``."""
    if isinstance(spec, Mapping):
        if not spec:
            raise CompositionError(f"{where}: empty composition mapping")
        amounts = _combine([(str(u), v) for u, v in spec.items()], where)
        label = "-".join(f"{u}{_fmt(v)}" for u, v in spec.items())
        return _build(_normalise(amounts, where), label)
    if not isinstance(spec, str) or not spec.strip():
        raise CompositionError(f"{where}: expected a formula string or a mapping, got {spec!r}")
    text = spec.strip()
    if text.startswith("("):
        parts = _PAREN_UNIT.findall(text)
        if not parts or _PAREN_UNIT.sub("", text).strip():
            raise CompositionError(
                f"{where}: cannot read {text!r}; expected e.g. (Na2O)0.25(SiO2)0.75")
        amounts = _combine([(u, float(a)) for u, a in parts], where)
        return _build(_normalise(amounts, where), text)
    if "-" in text:
        parts = []
        for piece in text.split("-"):
            if not piece.strip():
                raise CompositionError(f"{where}: empty component in {text!r}")
            m = _MULTIPLIER.match(piece)
            mult = float(m.group(1)) if m else 1.0
            unit = piece[m.end():] if m else piece
            if not mult > 0:
                raise CompositionError(
                    f"{where}: zero amount of {unit.strip()} in {text!r}; leave it out")
            parts.append((unit.strip(), mult))
        amounts = _combine(parts, where)
        total = sum(amounts.values())
        return _build({u: v / total for u, v in amounts.items()}, text)
    comp = _check_unit(text, where)
    return _build({comp.reduced_formula if len(comp) == 1 else text: 1.0}, text)


def _fmt(v: float) -> str:
    return f"{v:g}"


def _build(fractions: dict[str, float], label: str) -> GlassComposition:
    units = tuple(sorted(fractions.items()))
    return GlassComposition(units=units, label=label)


def composition_grid(
    endmembers: Sequence[str], step: float, include_endmembers: bool = False,
    bounds: Mapping[str, Sequence[float]] | None = None, where: str = "grid",
) -> list[GlassComposition]:
    """All mixtures of ``endmembers`` on a simplex grid of spacing ``step`` (e.g. 0.1).

    Pure endmembers are skipped unless ``include_endmembers``; ``bounds`` limits any endmember's
    fraction to [lo, hi]. Raises when the grid is empty.
    """
    if len(endmembers) < 2:
        raise CompositionError(f"{where}.endmembers: need at least two, got {list(endmembers)}")
    if len(set(endmembers)) != len(endmembers):
        raise CompositionError(f"{where}.endmembers: duplicates in {list(endmembers)}")
    if not 0 < step <= 0.5:
        raise CompositionError(f"{where}.step: expected 0 < step <= 0.5, got {step}")
    n = round(1.0 / step)
    if abs(n * step - 1.0) > 1e-9:
        raise CompositionError(f"{where}.step: 1/step must be an integer, got step={step}")
    units = []
    for em in endmembers:
        comp = _check_unit(em, f"{where}.endmembers")
        units.append(comp.reduced_formula if len(comp) == 1 else em)
    bounds = dict(bounds or {})
    for key in bounds:
        if key not in endmembers:
            raise CompositionError(
                f"{where}.bounds: {key!r} is not one of the endmembers {list(endmembers)}")
    out = []
    for counts in _simplex(n, len(units)):
        if not include_endmembers and max(counts) == n:
            continue
        fracs = [Fraction(c, n) for c in counts]
        ok = all(
            bounds.get(em, (0, 1))[0] - 1e-9 <= float(f) <= bounds.get(em, (0, 1))[1] + 1e-9
            for em, f in zip(endmembers, fracs, strict=True)
        )
        if not ok:
            continue
        mix = {u: float(f) for u, f in zip(units, fracs, strict=True) if f > 0}
        label = "-".join(f"({u}){float(f):g}" for u, f in zip(units, fracs, strict=True) if f > 0)
        out.append(_build(mix, label))
    if not out:
        raise CompositionError(
            f"{where}: the grid over {list(endmembers)} with step {step} is empty")
    return out


def _simplex(n: int, k: int):
    """Integer vectors of length k summing to n (lexicographic)."""
    if k == 1:
        yield (n,)
        return
    for first in range(n, -1, -1):
        for rest in _simplex(n - first, k - 1):
            yield (first, *rest)


def cell_stoichiometry(comp: GlassComposition, n_atoms: int, tolerance: float = 0.02,
                       where: str = "atoms_per_cell",
                       atoms_tolerance: float = 0.1) -> dict[str, int]:
    """Whole units of each component for a cell of about ``n_atoms`` atoms.

    Picks the number of units per component (largest remainder) for the total closest to
    ``n_atoms`` that keeps every component present and every mole fraction within
    ``tolerance`` of the target, with at most ``atoms_tolerance`` relative deviation from
    ``n_atoms``. Returns element counts. Raises when no such cell exists.
    """
    if n_atoms < 1:
        raise CompositionError(f"{where}: must be positive, got {n_atoms}")
    units = [(PmgComposition(u), x) for u, x in comp.units]
    atoms_per_mix = sum(x * c.num_atoms for c, x in units)
    best = None
    base = n_atoms / atoms_per_mix
    for scale in sorted({max(1, round(base * f)) for f in (1.0, 0.98, 1.02, 0.96, 1.04)}
                        | {max(1, math.floor(base)), math.ceil(base)}):
        counts = _largest_remainder([x for _, x in units], scale)
        if any(c == 0 for c in counts):
            continue
        total_units = sum(counts)
        err = max(abs(c / total_units - x) for c, (_, x) in zip(counts, units, strict=True))
        if err > tolerance:
            continue
        atoms = sum(c * u.num_atoms for c, (u, _) in zip(counts, units, strict=True))
        if abs(atoms - n_atoms) > atoms_tolerance * n_atoms:
            continue
        key = (err > 1e-9, abs(atoms - n_atoms), err)  # exact stoichiometry first, then size
        if best is None or key < best[0]:
            best = (key, counts)
    if best is None:
        smallest = _smallest_cell(units, tolerance)
        hint = (f"smallest such cell: {smallest} atoms; use a multiple of it" if smallest > 0
                else "no cell up to 100000 formula units does; round the amounts")
        raise CompositionError(
            f"{where}: no cell of {n_atoms} atoms (±{atoms_tolerance:.0%}) holds "
            f"{comp.label or comp.reduced_formula} with every component within {tolerance:.0%} "
            f"({hint})"
        )
    counts = best[1]
    if sum(counts) < MIN_FORMULA_UNITS:
        per_unit = n_atoms / sum(counts)
        raise CompositionError(
            f"{where}: a cell of {n_atoms} atoms holds only {sum(counts)} formula unit(s) of "
            f"{comp.label or comp.reduced_formula}; expected at least {MIN_FORMULA_UNITS} (a glass "
            f"needs disorder), i.e. at least {math.ceil(MIN_FORMULA_UNITS * per_unit)} atoms")
    elements: dict[str, int] = {}
    for c, (u, _) in zip(counts, units, strict=True):
        for el, amt in u.get_el_amt_dict().items():
            elements[el] = elements.get(el, 0) + int(round(c * amt))
    return dict(sorted(elements.items()))


def _largest_remainder(fractions: Sequence[float], total: int) -> list[int]:
    raw = [f * total for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _smallest_cell(units, tolerance: float) -> int:
    for scale in itertools.count(1):
        counts = _largest_remainder([x for _, x in units], scale)
        if all(counts) and max(abs(c / scale - x)
                               for c, (_, x) in zip(counts, units, strict=True)) <= tolerance:
            return int(sum(c * u.num_atoms for c, (u, _) in zip(counts, units, strict=True)))
        if scale > 100000:
            return -1
    return -1


_OXIDE_NAME = re.compile(r"^([a-z]+?)(\d*)o(\d*)$")


def _spell_oxide(name: str) -> str:
    """'sio2' -> 'SiO2', 'al2o3' -> 'Al2O3' for messages (a binary oxide's lower-case name)."""
    m = _OXIDE_NAME.match(name)
    return f"{m.group(1).capitalize()}{m.group(2)}O{m.group(3)}" if m else name


def parse_oxides(text: str, oxides: Sequence[str]) -> dict[str, float]:
    """Command-line amounts 'SiO2=75,Na2O=25' -> {'sio2': 75.0, 'na2o': 25.0}; names are
    case-insensitive and must be among ``oxides`` (lower case). A repeated name, an amount that
    is not a finite number or an unknown name is refused in one line quoting ``text``; sums are
    left to the caller."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        key = name.strip().lower()
        if not sep or key not in oxides:
            raise ValueError(f"--composition {text!r}: {item.strip()!r} is not <oxide>=<amount> "
                             f"with an oxide among {', '.join(_spell_oxide(o) for o in oxides)}")
        if key in out:
            raise ValueError(f"--composition {text!r}: {name.strip()} is given twice")
        try:
            out[key] = float(value)
        except ValueError:
            raise ValueError(f"--composition {text!r}: amount {value.strip()!r} of {name.strip()} "
                             "is not a number") from None
        if not math.isfinite(out[key]):
            raise ValueError(f"--composition {text!r}: amount of {name.strip()} is {out[key]}; "
                             "expected a finite number")
    return out
