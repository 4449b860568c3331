"""The search space of a force-field fit and the start-up checks of the ``forcefield_fit`` section.

A candidate is a point of the unit cube, one coordinate per free parameter (linear or, for
``log_scale`` names, logarithmic between the bounds). ``FitSpace.parameter_set`` turns a point
into a Buckingham ``ParameterSet``: free values, every other parameter and the r^-24 walls from
the base set, and the anion's charge from neutrality of the fitted composition (q_O = -q_Si/2
for SiO2, as in the Liu thesis).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vitriflow.config import ConfigError

SECTION = "forcefield_fit"
_NAME = re.compile(r"^(q)_([A-Z][a-z]?)$|^(A|rho|C)_([A-Z][a-z]?)-([A-Z][a-z]?)$")
_AMU_A3_TO_G_CM3 = 1.66053906660


def load_section(data: Mapping[str, Any] | None) -> dict:
    """The section validated against ``schemas/forcefield_fit.schema.yaml`` with every default
    filled in (a plain dict); ConfigError naming the key otherwise."""
    from vitriflow.config import validate_section

    return validate_section(data or {}, SECTION, where=f"{SECTION}.")


def parse_name(name: str) -> tuple[str, str]:
    """``'q_Si'`` -> ``('q', 'Si')``; ``'rho_Si-O'`` -> ``('rho', 'O-Si')`` (pair sorted)."""
    from vitriflow.potentials.classical_params import pair_key

    m = _NAME.match(name)
    if not m:
        raise ValueError(f"{name!r} is not q_<element> or A_/rho_/C_<pair>")
    if m.group(1):
        return "q", m.group(2)
    return m.group(3), pair_key(m.group(4), m.group(5))


def canonical_name(name: str) -> str:
    kind, target = parse_name(name)
    return f"{kind}_{target}"


def base_parameter_set(base: str, base_dir: str | Path = "."):
    """A Buckingham ``ParameterSet`` from a registry name or a parameter file path."""
    from vitriflow.potentials.classical_params import PARAMETER_SETS, load_parameter_file

    if base in PARAMETER_SETS:
        p = PARAMETER_SETS[base]
    else:
        path = Path(base) if Path(base).is_absolute() else Path(base_dir) / base
        if not path.is_file():
            buck = sorted(k for k, v in PARAMETER_SETS.items() if v.form == "buckingham")
            raise ConfigError(f"{SECTION}.base: {base!r} is neither a Buckingham parameter set "
                              f"({', '.join(buck)}) nor an existing parameter file")
        try:
            p = load_parameter_file(path)
        except ValueError as exc:
            raise ConfigError(f"{SECTION}.base: {exc}") from None
    if p.form != "buckingham":
        raise ConfigError(f"{SECTION}.base: {base!r} has form {p.form!r}; "
                          "expected a Buckingham set")
    return p


def cell_counts(composition: str, atoms_per_cell: int, where: str) -> dict[str, int]:
    """Element counts of one cell of ``composition`` (whole formula units)."""
    from vitriflow.composition import CompositionError, cell_stoichiometry, parse_composition

    try:
        comp = parse_composition(composition, where=f"{where}.composition")
        return dict(sorted(cell_stoichiometry(comp, atoms_per_cell,
                                              where=f"{where}.atoms_per_cell").items()))
    except CompositionError as exc:
        raise ConfigError(str(exc)) from None


def cell_length(counts: Mapping[str, int], density_g_cm3: float) -> float:
    """Edge (Å) of the cubic cell holding ``counts`` at ``density_g_cm3``."""
    from ase.data import atomic_masses, atomic_numbers

    mass = sum(n * atomic_masses[atomic_numbers[el]] for el, n in counts.items())
    return float((mass * _AMU_A3_TO_G_CM3 / density_g_cm3) ** (1.0 / 3.0))


@dataclass(frozen=True)
class FitSpace:
    """Free parameters (canonical names, bounds, scales) over a base parameter set."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    log: tuple[bool, ...]
    base: Any  # ParameterSet
    counts: Mapping[str, int]  # atoms per cell by element
    anion: str
    walls: Mapping[str, float]
    settings: Mapping[str, Any]  # Coulomb treatment, cutoffs, truncation of every set

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted(self.counts))

    def to_unit(self, values: Mapping[str, float] | Sequence[float]) -> np.ndarray:
        """Parameter values (by name or in order) -> unit-cube coordinates."""
        v = np.array([values[n] for n in self.names] if isinstance(values, Mapping) else values,
                     dtype=float)
        lo, hi = np.array(self.lower), np.array(self.upper)
        lg = np.array(self.log)
        with np.errstate(divide="ignore", invalid="ignore"):
            lin = (v - lo) / (hi - lo)
            logu = (np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo))
        return np.where(lg, logu, lin)

    def from_unit(self, u: Sequence[float]) -> dict[str, float]:
        """Unit-cube coordinates -> parameter values by name."""
        out = {}
        for k, name in enumerate(self.names):
            x = float(u[k])
            lo, hi = self.lower[k], self.upper[k]
            if self.log[k]:
                out[name] = float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))))
            else:
                out[name] = float(lo + x * (hi - lo))
        return out

    def base_values(self, parameter_set=None) -> dict[str, float]:
        """The free parameters' values in ``parameter_set`` (default: the base set); NaN where
        that set has no such term."""
        p = parameter_set or self.base
        out = {}
        for name in self.names:
            kind, target = parse_name(name)
            if kind == "q":
                out[name] = float(p.charges.get(target, math.nan))
                continue
            row = p.pairs.get(target)
            if row is None:
                out[name] = math.nan
            elif kind == "A":
                out[name] = float(row[0])
            elif kind == "rho":
                out[name] = 1.0 / float(row[1]) if row[1] else math.nan
            else:
                out[name] = float(row[2])
        return out

    def parameter_set(self, values: Mapping[str, float], name: str = "candidate"):
        """The Buckingham ``ParameterSet`` of free-parameter ``values`` (other terms from the
        base set; walls folded into D; anion charge from neutrality of the fitted cell)."""
        from vitriflow.potentials.classical_params import ParameterSet

        b = self.base
        charges = dict(b.charges)
        pairs = {k: list(v) for k, v in b.pairs.items()}
        for nm in self.names:
            kind, target = parse_name(nm)
            val = float(values[nm])
            if kind == "q":
                charges[target] = val
                continue
            row = pairs.setdefault(target, [0.0, 1.0, 0.0, 0.0])
            if kind == "A":
                row[0] = val
            elif kind == "rho":
                row[1] = 1.0 / val
            else:
                row[2] = val
        cation_charge = sum(n * charges[el] for el, n in self.counts.items() if el != self.anion)
        charges[self.anion] = -cation_charge / self.counts[self.anion]
        for key in set(pairs) | set(b.walls) | set(self.walls):
            row = pairs.setdefault(key, [0.0, 1.0, 0.0, 0.0])
            row[3] = b.pairs[key][3] if key in b.pairs else 0.0
            row[3] += self.walls.get(key, b.walls.get(key, 0.0))
        return ParameterSet(
            name=name, form="buckingham",
            charges={el: float(charges[el]) for el in self.elements},
            pairs={k: tuple(float(x) for x in v) for k, v in sorted(pairs.items())
                   if all(el in self.counts for el in k.split("-"))},
            citation=f"vitriflow forcefield_fit over {b.name}", **dict(self.settings),
        )

    def comparison_set(self, p):
        """A published set restricted to the fitted elements, with this fit's Coulomb settings
        and its own walls folded into D (neutralising charges resolved for the fitted cell), so
        that it can share one batch with the candidates."""
        from vitriflow.potentials.classical_params import ParameterSet

        charges = {el: float(p.charges[el]) for el in self.elements}
        x = p.neutralizing_element
        if x is not None and x in self.counts:
            cations = sum(n * charges[el] for el, n in self.counts.items() if el != x)
            charges[x] = -cations / self.counts[x]
        pairs = {k: (*(float(v) for v in row[:3]), float(row[3]) + float(p.walls.get(k, 0.0)))
                 for k, row in sorted(p.pairs.items())
                 if all(el in self.counts for el in k.split("-"))}
        return ParameterSet(name=p.name, form="buckingham", charges=charges, pairs=pairs,
                            citation=p.citation, **dict(self.settings))


def build_space(section: Mapping[str, Any], base_dir: str | Path = ".") -> FitSpace:
    """The ``FitSpace`` of a validated section (``load_section``); ConfigError naming the key."""
    from vitriflow.potentials.classical_params import pair_key

    where = SECTION
    sp = section["state_point"]
    counts = cell_counts(sp["composition"], sp["atoms_per_cell"], f"{where}.state_point")
    elements = sorted(counts)
    anion = section["anion"]
    if anion not in counts:
        raise ConfigError(f"{where}.anion: {anion!r} is not an element of {sp['composition']} "
                          f"({', '.join(elements)})")
    if len(counts) < 2:
        raise ConfigError(f"{where}.state_point.composition: {sp['composition']!r} has one "
                          "element; expected cations and an anion")
    base = base_parameter_set(section["base"], base_dir)
    missing = [el for el in elements if el not in base.charges]
    if missing:
        raise ConfigError(f"{where}.base: {base.name!r} has no charge for {missing}; "
                          "expected a set "
                          f"covering {', '.join(elements)}")
    names, lower, upper = [], [], []
    for raw, bounds in section["free"].items():
        key = f"{where}.free.{raw}"
        try:
            kind, target = parse_name(raw)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        targets = [target] if kind == "q" else target.split("-")
        unknown = [el for el in targets if el not in counts]
        if unknown:
            raise ConfigError(f"{key}: unknown parameter, {unknown} not in {sp['composition']}; "
                              f"expected q_<cation>, A_/rho_/C_<pair> of {', '.join(elements)}")
        if kind == "q" and target == anion:
            raise ConfigError(f"{key}: the charge of the anion {anion} follows from neutrality; "
                              "free the cation charges instead")
        name = f"{kind}_{target}"
        if name in names:
            raise ConfigError(f"{key}: {name} is given twice")
        lo, hi = (float(x) for x in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"{key}: bounds {list(bounds)} are empty or inverted; expected "
                              "[low, high] with low < high")
        if kind == "rho" and lo <= 0:
            raise ConfigError(f"{key}: bounds {list(bounds)}; rho must stay > 0")
        if kind == "A" and lo < 0:
            raise ConfigError(f"{key}: bounds {list(bounds)}; A must stay >= 0")
        names.append(name)
        lower.append(lo)
        upper.append(hi)
    canon = {}
    for raw in section["log_scale"]:
        try:
            canon[canonical_name(raw)] = raw
        except ValueError as exc:
            raise ConfigError(f"{where}.log_scale: {exc}") from None
    for name, raw in canon.items():
        if name not in names:
            raise ConfigError(f"{where}.log_scale: {raw!r} is not a free parameter; free: {names}")
        if lower[names.index(name)] <= 0:
            raise ConfigError(f"{where}.log_scale: {raw!r} has bounds starting at "
                              f"{lower[names.index(name)]}; a log scale needs bounds > 0")
    walls = {}
    for raw, d in section["walls"].items():
        parts = raw.split("-")
        if len(parts) != 2 or any(el not in counts for el in parts):
            raise ConfigError(f"{where}.walls.{raw}: expected a pair 'X-Y' of "
                              f"{', '.join(elements)}")
        walls[pair_key(*parts)] = float(d)
    settings = {k: section[k] for k in ("coulomb", "alpha", "cutoff", "coulomb_cutoff",
                                        "truncation", "smoothing_width")}
    return FitSpace(tuple(names), tuple(lower), tuple(upper), tuple(n in canon for n in names),
                    base, counts, anion, walls, settings)


def required_pairs(section: Mapping[str, Any], counts: Mapping[str, int]) -> list[str]:
    """Partial pairs in R_chi: ``reference.pairs`` or every pair of the composition."""
    from vitriflow.analysis.rdf import pair_name, species_pairs

    elements = sorted(counts)
    given = section["reference"]["pairs"]
    if not given:
        return [pair_name(a, b) for a, b in species_pairs(elements)]
    out = []
    for raw in given:
        a, b = raw.split("-")
        if a not in counts or b not in counts:
            raise ConfigError(f"{SECTION}.reference.pairs: {raw!r} is not a pair of "
                              f"{', '.join(elements)}")
        out.append(pair_name(a, b))
    return out


def check_config(section: Mapping[str, Any], settings=None, base_dir: str | Path = ".") -> FitSpace:
    """Start-up checks of ``forcefield_fit`` (schema, then what needs code): free parameter names
    and bounds, the base set, composition and cell, the reference (file, columns for every pair
    the cost needs, r range within half the cell), comparison sets. Returns the ``FitSpace``;
    raises ConfigError (one line naming the key) otherwise. ``settings`` (``vitriflow.config
    .Settings``) lets ``reference.system`` be checked against the run's systems."""
    from vitriflow.analysis.rdf import r_grid
    from vitriflow.config import thaw
    from vitriflow.potentials.classical_params import PARAMETER_SETS

    section = load_section(thaw(section))
    space = build_space(section, base_dir)
    where = f"{SECTION}.reference"
    ref = section["reference"]
    sp = section["state_point"]
    pairs = required_pairs(section, space.counts)
    half = 0.5 * cell_length(space.counts, sp["density_g_cm3"])
    if ref["r_max"] > half + 1e-9:
        raise ConfigError(f"{where}.r_max: {ref['r_max']} Å exceeds half the cell width "
                          f"({half:.2f} Å) of {sum(space.counts.values())} atoms at "
                          f"{sp['density_g_cm3']} g/cm3; lower r_max or raise atoms_per_cell")
    if ref["r_min"] >= ref["r_max"]:
        raise ConfigError(f"{where}.r_min: {ref['r_min']} is not below r_max {ref['r_max']}")
    try:
        r_grid(ref["r_max"], ref["dr"])
    except ValueError:
        raise ConfigError(f"{where}.r_max: {ref['r_max']} is not a whole number (>= 2) of bins "
                          f"of dr = {ref['dr']}") from None
    if (sp["melt_temperature_K"] is None) != (sp["quench_steps"] == 0):
        raise ConfigError(f"{SECTION}.state_point.quench_steps: {sp['quench_steps']} with "
                          f"melt_temperature_K {sp['melt_temperature_K']}; the glass protocol "
                          "needs both (a melt temperature and quench_steps > 0), a liquid neither")
    if sp["melt_temperature_K"] is not None and sp["melt_temperature_K"] <= sp["temperature_K"]:
        raise ConfigError(f"{SECTION}.state_point.melt_temperature_K: "
                          f"{sp['melt_temperature_K']} is not above temperature_K "
                          f"{sp['temperature_K']}; expected a melt hotter than the glass")
    if sp["sample_every"] > sp["sampling_steps"]:
        raise ConfigError(f"{SECTION}.state_point.sample_every: {sp['sample_every']} exceeds "
                          f"sampling_steps {sp['sampling_steps']}; no frame would be sampled")
    if ref["kind"] == "neutron_fq" and not ref["q_min"] < ref["q_max"]:
        raise ConfigError(f"{where}.q_min: {ref['q_min']} is not below q_max {ref['q_max']}")
    if ref["kind"] == "rdf_table" and ref["system"] is not None and settings is not None:
        if ref["system"] not in settings.systems:
            raise ConfigError(f"{where}.system: {ref['system']!r} is not a system of this run "
                              f"({', '.join(settings.systems)})")
    if ref["kind"] == "rdf_table" and ref["path"] is None and ref["system"] is None:
        raise ConfigError(f"{where}: kind rdf_table needs system (or path)")
    if ref["kind"] != "rdf_table" or ref["path"] is not None:
        if ref["path"] is None:
            raise ConfigError(f"{where}.path: kind {ref['kind']} needs a reference file")
        path = Path(ref["path"])
        path = path if path.is_absolute() else Path(base_dir) / path
        if ref["kind"] != "rdf_table" or path.is_file():
            from vitriflow.forcefield_fit.reference import load_reference

            try:
                load_reference(section, space.counts, base_dir=base_dir)
            except (ValueError, OSError) as exc:
                raise ConfigError(f"{where}.path: {' '.join(str(exc).split())}") from None
    for name in section["compare_with"]:
        p = PARAMETER_SETS.get(name)
        if p is None or p.form != "buckingham":
            buck = sorted(k for k, v in PARAMETER_SETS.items() if v.form == "buckingham")
            raise ConfigError(f"{SECTION}.compare_with: {name!r} is not a Buckingham "
                              "parameter set; "
                              f"expected some of {buck}")
        missing = [el for el in space.elements if el not in p.charges]
        if missing:
            raise ConfigError(f"{SECTION}.compare_with: {name!r} has no parameters for {missing}")
    _ = pairs
    return space
