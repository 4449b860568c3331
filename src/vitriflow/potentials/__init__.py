"""Interatomic potentials by name, each a torch-sim ``ModelInterface``.

The names, kinds and typed options live in ``registry`` (torch-free); ``load_model`` builds a
model through the loader the registry names:

- ``sevennet-0``: SevenNet-0 (NequIP-type equivariant GNN trained on MPtrj), weights ship in the
  ``sevenn`` wheel; batched natively through ``sevenn.torchsim.SevenNetModel``. On CUDA,
  cuEquivariance kernels are used when ``cuequivariance-torch`` is importable.
- ``chgnet``: CHGNet 0.3 weights from the ``chgnet`` wheel, wrapped by ``CHGNetTorchSimModel``:
  batched inference on the device, graphs built per structure on the CPU.
- the classical oxide-glass pair potentials of ``classical_params``
  (``vitriflow.potentials.classical``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from vitriflow.potentials.registry import CLASSICAL, MLIPS, NAMES, REGISTRY, is_mlip

log = logging.getLogger("vitriflow.potentials")

__all__ = ["CLASSICAL", "MLIPS", "NAMES", "REGISTRY", "cueq_available", "is_mlip", "load_model",
           "single_points"]


def cueq_available() -> bool:
    return importlib.util.find_spec("cuequivariance_torch") is not None


def load_model(name: str, device: str = "cpu", dtype=None, **options):
    """A torch-sim model for potential ``name`` on ``device``.

    MLIPs run in float32 (their training precision) whatever ``dtype`` says; classical models
    default to float64. ``options`` are the potential's ``potential_options`` (registry).
    """
    if name not in REGISTRY:
        raise ValueError(f"potential: unknown name {name!r}; expected one of {list(NAMES)}")
    module, _, function = REGISTRY[name].loader.partition(":")
    return getattr(importlib.import_module(module), function)(name, device=device, dtype=dtype,
                                                                **options)


def load_sevennet(name: str, device: str = "cpu", dtype=None, enable_cueq: bool | None = None):
    import torch
    from sevenn.torchsim import SevenNetModel

    dev = torch.device(device)
    cueq = dev.type == "cuda" and cueq_available() if enable_cueq is None else enable_cueq
    log.info("SevenNet-0 on %s (cuEquivariance: %s)", dev, cueq)
    return SevenNetModel("7net-0", device=dev, dtype=torch.float32, enable_cueq=cueq)


def load_chgnet(name: str, device: str = "cpu", dtype=None):
    import torch

    from vitriflow.potentials.chgnet_model import CHGNetTorchSimModel

    return CHGNetTorchSimModel(device=torch.device(device))


def load_classical(name: str, device: str = "cpu", dtype=None, **options):
    import torch

    from vitriflow.potentials.classical import ClassicalPairModel

    return ClassicalPairModel(name, device=torch.device(device), dtype=dtype or torch.float64,
                              **options)


def single_points(model, atoms_list, dtype=None) -> list[float]:
    """Total energies (eV) of ``atoms_list`` with a torch-sim model, in one batch."""
    import torch_sim as ts

    if not atoms_list:
        return []
    state = ts.io.atoms_to_state(list(atoms_list), device=model.device, dtype=dtype or model.dtype)
    out = model(state)  # models take gradients for forces themselves: no torch.no_grad here
    return [float(e) for e in out["energy"].detach().cpu()]
