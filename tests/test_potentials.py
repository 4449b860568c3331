"""MLIP wrappers: batched results equal one-at-a-time results of the upstream code (CPU)."""

import numpy as np
import pytest
import torch
import torch_sim as ts
from ase.build import bulk

from vitriflow.potentials import load_model, single_points


@pytest.fixture(scope="module")
def cells():
    si = bulk("Si", "diamond", 5.43, cubic=True)
    si.rattle(0.05, seed=1)
    nacl = bulk("NaCl", "rocksalt", 5.64)
    nacl.rattle(0.05, seed=2)
    return [si, nacl]


def test_unknown_potential_is_refused():
    with pytest.raises(ValueError, match="unknown name 'lj'"):
        load_model("lj")


def test_chgnet_batched_matches_chgnet_itself(cells):
    from chgnet.model import CHGNet
    from pymatgen.io.ase import AseAtomsAdaptor

    model = load_model("chgnet")
    state = ts.io.atoms_to_state(cells, device=torch.device("cpu"), dtype=torch.float32)
    out = model(state)
    ref = CHGNet.load(verbose=False, use_device="cpu")
    for k, atoms in enumerate(cells):
        pred = ref.predict_structure(AseAtomsAdaptor.get_structure(atoms), task="efs")
        assert float(out["energy"][k]) == pytest.approx(pred["e"] * len(atoms), abs=1e-3)
        sl = slice(sum(len(a) for a in cells[:k]), sum(len(a) for a in cells[: k + 1]))
        np.testing.assert_allclose(out["forces"][sl].numpy(), pred["f"], atol=1e-3)
        np.testing.assert_allclose(out["stress"][k].numpy(), pred["s"] / 160.21766208, atol=1e-4)


def test_sevennet_batch_equals_single(cells):
    model = load_model("sevennet-0")
    batched = single_points(model, cells)
    single = [single_points(model, [a])[0] for a in cells]
    assert batched == pytest.approx(single, abs=1e-3)
    assert batched[0] / len(cells[0]) == pytest.approx(-5.4, abs=0.3)  # Si, MP-like scale
