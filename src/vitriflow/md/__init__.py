"""Batched melt-quench molecular dynamics on torch-sim.

Modules: ``protocol`` (torch-free schedules built from config), ``engine`` (the guarded,
checkpointed batched run, FIRE relaxations), ``elemental_refs`` (the potential's own elemental
reference energies), ``report`` (the report section). Names are imported lazily so that the
torch-free parts stay importable at DAG time.
"""

from importlib import import_module

_EXPORTS = {
    "Protocol": "protocol", "ProtocolError": "protocol", "Stage": "protocol",
    "run_melt_quench": "engine", "fire_relax": "engine", "prerelax": "engine",
    "check_structure": "engine", "Task": "engine",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"vitriflow.md.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vitriflow.md' has no attribute {name!r}")
