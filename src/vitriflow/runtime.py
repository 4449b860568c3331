"""Run-time plumbing shared by scripts: logging to the rule's log file, seeding, device choice."""

from __future__ import annotations

import logging
import os
import random
import sys

import numpy as np


def script_logger(name: str, log_path: str | os.PathLike | None = None) -> logging.Logger:
    """Logger writing to ``log_path`` (the rule's ``log:``) and to stderr."""
    logger = logging.getLogger(f"vitriflow.{name}")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    # library modules log under "vitriflow.*": route them to the same places
    root = logging.getLogger("vitriflow")
    root.setLevel(logging.INFO)
    root.handlers = handlers
    logger.propagate = False
    files = [h for h in handlers if isinstance(h, logging.FileHandler)]
    if files:  # a job that dies must say why in its rule log, not only on Snakemake's stderr
        sys.excepthook = lambda *exc: _log_uncaught(logger, files, exc)
    return logger


def _log_uncaught(logger: logging.Logger, files: list[logging.Handler], exc) -> None:
    """A job that dies: the traceback goes to the rule's log file, and the console gets one line
    naming the error and the log (the whole traceback with VITRIFLOW_DEBUG=1)."""
    if issubclass(exc[0], KeyboardInterrupt):
        sys.__excepthook__(*exc)
        return
    record = logger.makeRecord(logger.name, logging.ERROR, "(uncaught)", 0, "job failed: %s: %s",
                               (exc[0].__name__, exc[1]), exc)
    for h in files:
        h.handle(record)
    if os.environ.get("VITRIFLOW_DEBUG"):
        sys.__excepthook__(*exc)
        return
    first = (str(exc[1]).strip().splitlines() or [""])[0]
    where = ", ".join(str(getattr(h, "baseFilename", "")) for h in files)
    print(f"vitriflow {logger.name.removeprefix('vitriflow.')} error: {exc[0].__name__}: {first} "
          f"(traceback in {where})", file=sys.stderr)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeds libraries that use the global RNG
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # torch is a hard dependency; kept soft for light tools
        pass


def pick_device(preference: str = "auto") -> str:
    """'cuda' when asked for or available under 'auto', else 'cpu'. Refuses 'cuda' without a GPU."""
    import torch

    if preference not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device: expected one of auto, cpu, cuda; got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' requested but torch sees no CUDA device")
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def load_system_model(spec, device: str, dtype: str, threads: int):
    """(model, device) of a system's potential for a job with ``threads`` CPU threads:
    ``device`` from the config (auto/cpu/cuda), ``dtype`` float64/float32 (MLIPs always run
    float32)."""
    import torch

    from vitriflow.potentials import load_model

    torch.set_num_threads(max(1, int(threads)))
    where = pick_device(device)
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    return load_model(spec.potential, device=where, dtype=torch_dtype,
                      **(spec.potential_options or {})), where
