"""Fit of classical Buckingham + Coulomb force fields to a reference structure by batched Bayesian
optimisation (Liu thesis ch. 7), config section ``forcefield_fit``.

Modules: ``space`` (free parameters, bounds, the start-up ``check_config``), ``reference`` (the
reference structure and R_chi), ``evaluate`` (candidates as one torch-sim batch of liquid cells),
``optimize`` (Sobol design, Gaussian process + q-batch acquisition, refinement, resumable
history), ``report`` (figures and the HTML section). Names are imported lazily so that the
torch-free checks stay cheap at DAG time.
"""

from importlib import import_module

_EXPORTS = {
    "FitSpace": "space", "check_config": "space", "load_section": "space",
    "build_space": "space", "Reference": "reference", "load_reference": "reference",
    "write_partials_csv": "reference", "fit_reference": "reference", "Evaluator": "evaluate",
    "StatePoint": "evaluate",
    "CandidateResult": "evaluate", "FitResult": "optimize", "run_fit": "optimize",
    "read_history": "optimize", "write_section_html": "report", "section_html": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"vitriflow.forcefield_fit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vitriflow.forcefield_fit' has no attribute {name!r}")
