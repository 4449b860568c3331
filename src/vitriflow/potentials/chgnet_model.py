"""CHGNet as a torch-sim model.

CHGNet has no torch-sim wrapper; this one converts the batched state to pymatgen structures and
calls ``CHGNet.predict_structure`` with the whole batch, so the network runs batched on the
device. Crystal graphs are still built per structure on the CPU (CHGNet's own graph converter),
which dominates the cost for small cells: expect it to be several times slower than SevenNet.
"""

from __future__ import annotations

import torch
from torch_sim.models.interface import ModelInterface

EV_A3_PER_GPA = 1 / 160.21766208


class CHGNetTorchSimModel(ModelInterface):
    """Energies (eV), forces (eV/Å) and stress (eV/Å^3) from CHGNet for a batched SimState."""

    def __init__(self, device: torch.device | str = "cpu", compute_stress: bool = True) -> None:
        super().__init__()
        from chgnet.model import CHGNet

        self._device = torch.device(device)
        self._dtype = torch.float32
        self._compute_stress = compute_stress
        self._compute_forces = True
        self._memory_scales_with = "n_atoms_x_density"
        self.model = CHGNet.load(verbose=False, use_device=str(self._device))

    def forward(self, state, **kwargs) -> dict[str, torch.Tensor]:
        structures = state.to_structures()
        preds = self.model.predict_structure(structures,
                                             task="efs" if self._compute_stress else "ef",
                                             batch_size=len(structures))
        if isinstance(preds, dict):
            preds = [preds]
        n_atoms = [len(s) for s in structures]
        energy = torch.tensor([p["e"] * n for p, n in zip(preds, n_atoms, strict=True)],
                              device=self._device, dtype=state.dtype)
        forces = torch.cat([torch.as_tensor(p["f"], dtype=state.dtype)
                            for p in preds]).to(self._device)
        out = {"energy": energy, "forces": forces}
        if self._compute_stress:
            # CHGNet reports stress in GPa with the compressive-positive sign of VASP; torch-sim
            # uses eV/Å^3 with tensile positive
            stress = torch.stack([torch.as_tensor(p["s"], dtype=state.dtype) * EV_A3_PER_GPA
                                  for p in preds]).to(self._device)
            out["stress"] = stress
        return out
