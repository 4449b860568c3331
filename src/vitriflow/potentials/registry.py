"""Every potential vitriflow runs, by name: its kind, its typed options and its loader.

The config schema's ``potential`` enum, the start-up checks of ``potential_options`` and
``vitriflow.potentials.load_model`` all read this table, so a potential is added here and
nowhere else. Torch-free: the DAG imports it at start-up.

Options are JSON-schema fragments, so a bad value is refused before any job runs with the
key, the value and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vitriflow.potentials.classical_params import PARAMETER_SETS


@dataclass(frozen=True)
class Potential:
    """One potential: ``kind`` is ``mlip`` (float32 network) or ``classical`` (pair potential)."""

    name: str
    kind: str
    loader: str  # "module:function" called as loader(name, device=..., dtype=..., **options)
    description: str
    options: Mapping[str, Mapping] = field(default_factory=dict)


_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_NON_NEGATIVE = {"type": "number", "minimum": 0}
CLASSICAL_OPTIONS: dict[str, dict] = {
    "coulomb": {"enum": ["dsf", "wolf", "none"],
                "description": "Coulomb treatment (damped shifted force, Wolf, or none)"},
    "alpha": {**_NON_NEGATIVE, "maximum": 2.0, "description": "DSF/Wolf damping (1/Å)"},
    "cutoff": {**_POSITIVE, "maximum": 30.0, "description": "short-range cutoff (Å)"},
    "coulomb_cutoff": {**_POSITIVE, "maximum": 30.0, "description": "Coulomb cutoff (Å)"},
    "truncation": {"enum": ["none", "shift", "smooth"],
                   "description": "how the short-range terms go to zero at the cutoff"},
    "smoothing_width": {**_NON_NEGATIVE, "maximum": 5.0,
                        "description": "width of the smooth truncation (Å)"},
    "walls": {"type": "boolean", "description": "add vitriflow's r^-24 walls"},
    "skin": {**_NON_NEGATIVE, "maximum": 5.0, "description": "Verlet-list buffer (Å)"},
    "compile": {"type": "boolean", "description": "fuse the pair kernel with torch.compile"},
}

REGISTRY: dict[str, Potential] = {
    "sevennet-0": Potential(
        "sevennet-0", "mlip", "vitriflow.potentials:load_sevennet",
        "SevenNet-0 (NequIP-type equivariant GNN trained on MPtrj; weights in the sevenn wheel)",
        {"enable_cueq": {
            "type": "boolean",
            "description": "cuEquivariance kernels (default: on CUDA when installed)"}},
    ),
    "chgnet": Potential(
        "chgnet", "mlip", "vitriflow.potentials:load_chgnet",
        "CHGNet 0.3 (weights in the chgnet wheel); graphs built per structure on the CPU",
    ),
    **{
        name: Potential(name, "classical", "vitriflow.potentials:load_classical",
                        f"{name.upper()} pair potential + Coulomb ({params.citation})",
                        CLASSICAL_OPTIONS)
        for name, params in PARAMETER_SETS.items()
    },
}

REGISTRY["buckingham"] = Potential(
    "buckingham", "classical", "vitriflow.potentials.classical:load_buckingham",
    "Buckingham + Coulomb from a parameter file, e.g. a forcefield_fit's fitted.yaml",
    {**CLASSICAL_OPTIONS,
     "parameters": {"type": "string", "minLength": 1,
                    "description": "the parameter file (YAML/JSON) of the potential"}},
)

NAMES: tuple[str, ...] = tuple(REGISTRY)
MLIPS: tuple[str, ...] = tuple(n for n, p in REGISTRY.items() if p.kind == "mlip")
CLASSICAL: tuple[str, ...] = tuple(n for n, p in REGISTRY.items() if p.kind == "classical")


def is_mlip(name: str) -> bool:
    return REGISTRY[name].kind == "mlip"


def options_schema(name: str) -> dict:
    """JSON schema of ``potential_options`` for potential ``name`` (unknown keys refused)."""
    return {"type": "object", "additionalProperties": False,
            "properties": {k: dict(v) for k, v in REGISTRY[name].options.items()}}
