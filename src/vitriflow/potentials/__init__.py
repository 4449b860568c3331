"""Interatomic potentials by name, each a torch-sim ``ModelInterface``.

- ``sevennet-0``: SevenNet-0 (NequIP-type equivariant GNN trained on MPtrj), weights ship in the
  ``sevenn`` wheel; batched natively through ``sevenn.torchsim.SevenNetModel``. On CUDA,
  cuEquivariance kernels are used when ``cuequivariance-torch`` is importable (2.15x measured).
- ``chgnet``: CHGNet 0.3 weights from the ``chgnet`` wheel, wrapped by ``CHGNetTorchSimModel``:
  batched inference on the device, graphs built per structure on the CPU.
- ``bks``, ``chik``, ``shik``, ``teter``: classical oxide-glass pair potentials
  (``vitriflow.potentials.classical``).
"""

from __future__ import annotations

import importlib.util
import logging

import torch

log = logging.getLogger("vitriflow.potentials")

MLIPS = ("sevennet-0", "chgnet")
CLASSICAL = ("bks", "chik", "shik", "teter", "pedone")
ALL = MLIPS + CLASSICAL


def is_mlip(name: str) -> bool:
    return name in MLIPS


def cueq_available() -> bool:
    return importlib.util.find_spec("cuequivariance_torch") is not None


def load_model(name: str, device: str = "cpu", dtype: torch.dtype = torch.float64, **options):
    """A torch-sim model for potential ``name`` on ``device``.

    MLIPs run in float32 (their training precision) whatever ``dtype`` says.
    ``options`` go to the classical model (cutoffs, Coulomb method) or, for SevenNet,
    ``enable_cueq`` (default: on CUDA when available).
    """
    dev = torch.device(device)
    if name == "sevennet-0":
        from sevenn.torchsim import SevenNetModel

        cueq = options.pop("enable_cueq", dev.type == "cuda" and cueq_available())
        log.info("SevenNet-0 on %s (cuEquivariance: %s)", dev, cueq)
        return SevenNetModel("7net-0", device=dev, dtype=torch.float32, enable_cueq=cueq)
    if name == "chgnet":
        from vitriflow.potentials.chgnet_model import CHGNetTorchSimModel

        return CHGNetTorchSimModel(device=dev)
    if name in CLASSICAL:
        from vitriflow.potentials.classical import ClassicalPairModel

        return ClassicalPairModel(name, device=dev, dtype=dtype, **options)
    raise ValueError(f"potential: unknown name {name!r}; expected one of {ALL}")


def single_points(model, atoms_list, dtype: torch.dtype | None = None) -> list[float]:
    """Total energies (eV) of ``atoms_list`` with a torch-sim model, in one batch."""
    import torch_sim as ts

    if not atoms_list:
        return []
    state = ts.io.atoms_to_state(list(atoms_list), device=model.device, dtype=dtype or model.dtype)
    out = model(state)  # models take gradients for forces themselves: no torch.no_grad here
    return [float(e) for e in out["energy"].detach().cpu()]
