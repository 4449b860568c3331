"""The config layer: schemas -> validated, defaulted, frozen settings -> jobs.

``load_config`` runs once, at DAG time (``workflow/rules/common.smk``). It

1. validates the config and every stage section it holds against
   ``src/vitriflow/schemas/<section>.schema.yaml`` -- the only place defaults are written --
   and fills the defaults in;
2. refuses non-finite numbers anywhere;
3. expands systems and scans and checks what needs code: compositions parse and fit their
   cells, protocols exist and build (``vitriflow.md.protocol``), potentials and their options
   (``vitriflow.potentials.registry``), the reference snapshot;
4. runs each enabled stage's own ``check_config(section, settings)``;

and returns ``Settings``, whose sections are ``Frozen`` (read-only) dicts. Rules hand them to
jobs as ``params``: being dicts, Snakemake notices when they change. Library code reads keys with
``cfg["key"]``; tests and the command line get a defaulted section from ``with_defaults``.
Every problem is one ``ConfigError`` line naming the key and the value.
"""

from __future__ import annotations

import copy
import importlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pymatgen.core import Element

from vitriflow.composition import (
    CompositionError,
    GlassComposition,
    cell_stoichiometry,
    composition_grid,
    parse_composition,
)

SCHEMA_DIR = Path(__file__).parent / "schemas"
#: stage sections: each has its own schema; a section absent from the config turns its stage off
STAGE_SECTIONS = ("analysis", "properties", "dft", "forcefield_fit", "viscosity", "dissolution",
                  "pcf", "gnn")
#: "module:function" of each stage's start-up check, called as check(section, settings)
STAGE_CHECKS = {
    "references": "vitriflow.references.checks:check_config",
    "analysis": "vitriflow.analysis.checks:check_config",
    "properties": "vitriflow.properties.checks:check_config",
    "dft": "vitriflow.dft.checks:check_config",
    "pcf": "vitriflow.surrogates.pcf.checks:check_config",
    "gnn": "vitriflow.surrogates.gnn.checks:check_config",
    "dissolution": "vitriflow.surrogates.dissolution.checks:check_config",
    "forcefield_fit": "vitriflow.forcefield_fit.checks:check_config",
    "viscosity": "vitriflow.surrogates.viscosity.checks:check_config",
}


class ConfigError(ValueError):
    """A configuration value that is well-formed but means something impossible."""


# ----------------------------------------------------------------------------- frozen settings
class Frozen(dict):
    """A read-only dict (nested dicts frozen, lists turned into tuples): a job cannot change
    its settings, and Snakemake still sees a dict whose changes it tracks."""

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("vitriflow settings are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __reduce__(self):
        return Frozen, (dict(self),)

    def __deepcopy__(self, memo):
        return self


def freeze(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return Frozen({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, list | tuple):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """A plain, mutable deep copy (dicts and lists) of frozen settings."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [thaw(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- schemas
def _inline_refs(node: Any, root: Mapping) -> Any:
    """Replace local ``$ref``s by their targets, so that every property's default is visible
    where the default-filling validator looks (the schemas are not recursive)."""
    if isinstance(node, Mapping):
        if "$ref" in node and str(node["$ref"]).startswith("#/"):
            target: Any = root
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            merged = {**_inline_refs(target, root),
                      **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline_refs(merged, root)
        return {k: _inline_refs(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, root) for v in node]
    return node


@cache
def load_schema(name: str) -> dict:
    """Schema ``name`` (``config``, a stage section, or ``config#<definition>`` for one of the
    config schema's ``$defs``, e.g. ``config#protocol``), local references inlined. The
    potential names come from the potential registry."""
    from vitriflow.potentials.registry import NAMES

    base, _, definition = name.partition("#")
    path = SCHEMA_DIR / f"{base}.schema.yaml"
    if not path.is_file():
        raise ConfigError(f"no schema {base!r} (expected {path})")
    raw = yaml.safe_load(path.read_text())
    if "potential" in raw.get("$defs", {}):
        raw["$defs"]["potential"]["enum"] = list(NAMES)
    schema = _inline_refs(raw, raw)
    return schema["$defs"][definition] if definition else schema


def _validator(schema: Mapping):
    """A Draft 2020-12 validator that fills in defaults as it validates."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def fill(validator, props, instance, node):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if isinstance(sub, Mapping) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from properties(validator, props, instance, node)

    return validators.extend(Draft202012Validator, {"properties": fill})(schema)


def _first_error(validator, instance):
    from jsonschema.exceptions import best_match

    return best_match(validator.iter_errors(instance))


def validate_section(data: Any, schema: str, where: str = "") -> dict:
    """A defaulted, validated deep copy of ``data`` (a plain dict); ``ConfigError`` naming the
    key and the problem otherwise. ``where`` prefixes the key (e.g. ``"analysis."``)."""
    instance = thaw(data) if data is not None else {}
    error = _first_error(_validator(load_schema(schema)), instance)
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}{key}: {error.message}" if where or error.absolute_path
                          else f"{error.message}")
    _refuse_non_finite(instance, where.rstrip("."))
    return instance


def with_defaults(schema: str, data: Mapping | None = None) -> Frozen:
    """Section ``data`` validated against ``schema`` with every default filled in, frozen:
    what a job receives, for tests and the command line."""
    return freeze(validate_section(data or {}, schema, where=f"{schema.replace('config#', '')}."))


def _refuse_non_finite(node: Any, where: str) -> None:
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{where or '(top level)'}: {node} is not a finite number; expected a "
                          "finite number")
    if isinstance(node, Mapping):
        for k, v in node.items():
            _refuse_non_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            _refuse_non_finite(v, f"{where}[{i}]")



@dataclass(frozen=True)
class SystemSpec:
    """One batched unit of work: a named list of compositions with potential and protocol."""

    name: str
    potential: str
    protocol: str
    atoms_per_cell: int
    replicas: int
    where: str
    compositions_cfg: tuple = ()
    grid: Mapping[str, Any] | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    step: float | None = None
    potential_options: Mapping[str, Any] | None = None

    def elements(self) -> set[str]:
        """Elements present in any composition (cheap for scans: read off the pairs)."""
        if self.pairs:
            return {el for pair in self.pairs for el in pair}
        return {el for comp in self.compositions() for el in comp.elements}

    def compositions(self) -> list[GlassComposition]:
        """The expanded, validated compositions of this system (in a fixed order)."""
        if self.pairs:
            out = []
            for a, b in self.pairs:
                out.extend(composition_grid([a, b], self.step, where=self.where))
            return out
        if self.grid is not None:
            g = self.grid
            return composition_grid(
                g["endmembers"], g["step"], g["include_endmembers"],
                g.get("bounds"), where=f"{self.where}.grid",
            )
        return [parse_composition(c, where=f"{self.where}.compositions[{i}]")
                for i, c in enumerate(self.compositions_cfg)]


def _scan_pairs(scan: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    if scan.get("elements"):
        els = list(scan["elements"])
        pairs = list(itertools.combinations(els, 2))
    elif scan.get("elements_a") and scan.get("elements_b"):
        pairs = [(a, b) for a in scan["elements_a"] for b in scan["elements_b"] if a != b]
    else:
        raise ConfigError(f"{where}: give either 'elements' or both 'elements_a' and 'elements_b'")
    for a, b in pairs:
        for el in (a, b):
            if not Element.is_valid_symbol(el):
                raise ConfigError(f"{where}: unknown element {el!r}")
    excluded = {frozenset(p) for p in scan["exclude_pairs"]}
    seen, out = set(), []
    for a, b in pairs:
        key = frozenset((a, b))
        if key in excluded or key in seen:
            continue
        seen.add(key)
        out.append(tuple(sorted((a, b))))
    if not out:
        raise ConfigError(f"{where}: the scan has no element pairs")
    return out


def expand_systems(config: Mapping[str, Any]) -> dict[str, SystemSpec]:
    """All systems of a config: explicit ones plus scan batches, keyed by name.

    Cheap: no composition is parsed.
    """
    systems: dict[str, SystemSpec] = {}
    for i, s in enumerate(config["systems"]):
        where = f"systems[{i}] ({s['name']})"
        if ("compositions" in s) == ("grid" in s):
            raise ConfigError(f"{where}: give exactly one of 'compositions' or 'grid'")
        spec = SystemSpec(
            name=s["name"], potential=s["potential"], protocol=s["protocol"],
            atoms_per_cell=s["atoms_per_cell"], replicas=s["replicas"],
            where=where, compositions_cfg=tuple(s.get("compositions", ())), grid=s.get("grid"),
            potential_options=dict(s["potential_options"]),
        )
        _add(systems, spec)
    for i, scan in enumerate(config["scans"]):
        where = f"scans[{i}] ({scan['name']})"
        pairs = _scan_pairs(scan, where)
        step = scan["step"]
        per_pair = round(1 / step) - 1
        if per_pair < 1:
            raise ConfigError(f"{where}.step: {step} leaves no composition between the endmembers")
        pairs_per_job = max(1, scan["compositions_per_job"] // per_pair)
        n_jobs = math.ceil(len(pairs) / pairs_per_job)
        for j in range(n_jobs):
            chunk = tuple(pairs[j * pairs_per_job:(j + 1) * pairs_per_job])
            spec = SystemSpec(
                name=f"{scan['name']}_{j:04d}", potential=scan["potential"],
                protocol=scan["protocol"], atoms_per_cell=scan["atoms_per_cell"],
                replicas=scan["replicas"], where=f"{where} job {j}", pairs=chunk, step=step,
            )
            _add(systems, spec)
    if not systems:
        raise ConfigError("systems: the config declares no systems or scans")
    return systems


def _add(systems: dict[str, SystemSpec], spec: SystemSpec) -> None:
    if spec.name in systems:
        raise ConfigError(f"{spec.where}: duplicate system name {spec.name!r}")
    systems[spec.name] = spec


@dataclass(frozen=True)
class DataFile:
    """A data file a stage reads: ``path`` (None when it cannot be had, ``reason`` then says why
    and how to get it) and ``dataset``, the registry key when the config named one."""

    path: str | None
    reason: str = ""
    dataset: str | None = None


def data_file(value: str | None, key: str, settings: Settings) -> DataFile:
    """Resolve a config value that names data: a dataset registry key (fetched by the
    ``fetch_dataset`` rule from the cache, the mirror or its public source) or a path to the
    user's own file. ConfigError for a typo (an unknown key, or a missing file in an existing
    folder); an unobtainable dataset or an absent folder is a DataFile without path."""
    if value is None:
        return DataFile(None, f"{key} is null")
    from vitriflow.datasets import load_registry, locate

    registry = load_registry()
    if value in registry:
        data = settings.config["data"]
        loc = locate(value, data["cache_dir"], data["mirror"], data["download"], registry)
        return DataFile(str(loc.path) if loc.path else None, "" if loc.path else loc.how, value)
    if "/" not in value and not Path(value).suffix:
        raise ConfigError(f"{key}: {value!r} is neither a dataset of data/registry.yaml "
                          f"({', '.join(sorted(registry))}) nor a file path")
    reason = optional_data_file(value, key)
    return DataFile(None if reason else value, reason)


def optional_data_file(path: str | Path, key: str) -> str:
    """'' when ``path`` is a file; the reason to go without it when its folder is absent (a data
    set that is not installed, as in a fresh clone without ../shared); a ConfigError naming
    ``key`` when the folder exists but the file does not, which is a typo, not a missing data
    set."""
    import difflib

    path = Path(path)
    if path.is_file():
        return ""
    if not path.parent.is_dir():
        return f"{key}: {path} not found (its folder {path.parent} is absent)"
    near = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"{key}: no file {path.name!r} in {path.parent}{hint}")


def check_config(config: Mapping[str, Any], base_dir: str | Path = ".",
                 deep: bool = True) -> dict[str, SystemSpec]:
    """Meaning checks of a schema-validated config; returns the expanded systems.

    ``deep`` parses every composition and checks it fits its cell (skip it for huge scans,
    whose compositions are generated from valid element pairs and checked in their own jobs).
    """
    from vitriflow.md.protocol import Protocol, ProtocolError
    from vitriflow.potentials.registry import NAMES

    systems = expand_systems(config)
    protocols = config["protocols"]
    for name, proto in protocols.items():
        try:
            Protocol.from_config(proto, where=f"protocols.{name}")
        except ProtocolError as exc:
            raise ConfigError(str(exc)) from None
    for spec in systems.values():
        if spec.protocol not in protocols:
            raise ConfigError(
                f"{spec.where}.protocol: unknown protocol {spec.protocol!r}; "
                f"defined: {sorted(protocols)}"
            )
        if spec.potential not in NAMES:
            raise ConfigError(f"{spec.where}.potential: unknown potential {spec.potential!r}; "
                              f"expected one of {list(NAMES)}")
        check_potential_options(spec)
        if deep and not spec.pairs:
            try:
                comps = spec.compositions()
            except CompositionError as exc:
                raise ConfigError(str(exc)) from exc
            if not comps:
                raise ConfigError(f"{spec.where}: no compositions")
            for comp in comps:
                try:
                    cell_stoichiometry(comp, spec.atoms_per_cell,
                                       where=f"{spec.where}.atoms_per_cell")
                except CompositionError as exc:
                    raise ConfigError(str(exc)) from exc
    return systems


# ----------------------------------------------------------------------------- load_config
@dataclass(frozen=True)
class Settings:
    """The validated run: the frozen config, its systems, and what stage checks worked out
    (e.g. the systems a surrogate learns from, under ``derived[<section>]``)."""

    config: Frozen
    systems: Mapping[str, SystemSpec]
    derived: Mapping[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Frozen | None:
        return self.config.get(name)

    def enabled(self, name: str) -> bool:
        return name in self.config

    def protocol(self, system: str) -> Frozen:
        return self.config["protocols"][self.systems[system].protocol]


def load_config(config: Mapping[str, Any], base_dir: str | Path = ".") -> Settings:
    """Validate, default, check and freeze a whole run config (see the module docstring)."""
    if not isinstance(config, Mapping) or not config:
        raise ConfigError("the config is empty or not a mapping of keys; expected a YAML mapping "
                          "with at least 'protocols' and 'systems' (see config/config.yaml)")
    data = validate_section(config, "config")
    for name in STAGE_SECTIONS:
        if name in data:
            data[name] = validate_section(data[name], name, where=f"{name}.")
    systems = check_config(data, base_dir=base_dir, deep=not data["scans"])
    frozen = freeze(data)
    settings = Settings(frozen, systems)
    derived = {}
    for name, target in STAGE_CHECKS.items():
        if name in frozen:  # references, with its schema default, always is
            module, _, function = target.partition(":")
            check = getattr(importlib.import_module(module), function)
            try:
                derived[name] = check(frozen[name], settings)
            except (ValueError, CompositionError) as exc:
                raise ConfigError(str(exc)) from None
    return Settings(frozen, systems, derived)


def check_potential_options(spec: SystemSpec) -> None:
    """``potential_options`` against the potential's typed options, one line naming the key."""
    from vitriflow.potentials.registry import REGISTRY, options_schema

    options = dict(spec.potential_options or {})
    allowed = list(REGISTRY[spec.potential].options)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{spec.where}.potential_options: unknown option(s) {unknown} for "
                          f"{spec.potential}; expected some of {allowed}")
    error = _first_error(_validator(options_schema(spec.potential)), options)
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path)
        raise ConfigError(f"{spec.where}.potential_options.{key}: {error.message} "
                          f"({REGISTRY[spec.potential].options[key].get('description', '')})")
    if "parameters" in REGISTRY[spec.potential].options:
        _check_parameter_file(spec, options.get("parameters"))


def _check_parameter_file(spec: SystemSpec, path: str | None) -> None:
    """A potential read from a parameter file: the file must load, unless the run itself writes
    it (a path under results/, e.g. a forcefield_fit's fitted.yaml, made before the MD)."""
    key = f"{spec.where}.potential_options.parameters"
    if not path:
        raise ConfigError(f"{key}: required for {spec.potential}; expected a parameter file, e.g. "
                          "results/forcefield_fit/fitted.yaml")
    if Path(path).parts[:1] == ("results",) and not Path(path).exists():
        return
    from vitriflow.potentials.classical_params import load_parameter_file

    try:
        load_parameter_file(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: {' '.join(str(exc).split())}") from None


def check_file(path: str | Path) -> Settings:
    """``vitriflow config check FILE``: read a config file and run every start-up check, with
    the problems Snakemake would report before any vitriflow code runs (YAML syntax, tabs, an
    empty file, a list instead of a mapping, a missing file) as one ``ConfigError`` line naming
    the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(getattr(exc, "problem", "") or exc).split())
        hint = "; indent with spaces, not tabs" if "'\\t'" in what else ""
        raise ConfigError(f"{where}: not valid YAML ({what}){hint}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a YAML mapping of config keys")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level is a {type(data).__name__}; expected a "
                          "mapping of config keys (protocols, systems, ...)")
    try:
        return load_config(data, base_dir=".")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
