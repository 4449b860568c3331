import numpy as np
import pytest

from vitriflow.structures.packing import PackingError, PackingRequest, min_pair_ratio, pack


def _requests(n=3, seed0=0):
    return ([PackingRequest({"Si": 16, "O": 32}, 18.0, seed0 + i, {"structure_id": f"s{i}"})
             for i in range(n)]
            + [PackingRequest({"Cu": 20, "Zr": 20}, 21.0, 77, {"structure_id": "cz"})])


@pytest.fixture(scope="module")
def packed():
    return pack(_requests(), min_distance_scale=0.7)


def test_density_matches_target_volume(packed):
    for atoms, req in zip(packed, _requests(), strict=True):
        assert atoms.get_volume() / len(atoms) == pytest.approx(req.volume_per_atom, rel=0.01)
        assert atoms.info["structure_id"] == req.info["structure_id"]


def test_minimum_distance_respected(packed):
    for atoms in packed:
        ratio, dmin = min_pair_ratio(atoms, 0.7)
        assert ratio >= 0.999
        assert dmin == pytest.approx(atoms.info["min_distance_A"], abs=1e-3)


def test_packing_is_deterministic_per_seed(packed):
    again = pack(_requests(), min_distance_scale=0.7)
    for a, b in zip(packed, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    other = pack(_requests(seed0=100)[:1], min_distance_scale=0.7)
    assert not np.allclose(other[0].positions, packed[0].positions)


def test_impossible_packing_is_refused():
    dense = [PackingRequest({"Si": 16, "O": 32}, 2.5, 1, {"structure_id": "too-dense"})]
    with pytest.raises(PackingError, match="too-dense: closest pair"):
        pack(dense, min_distance_scale=1.1, max_steps=200)


def test_one_unpackable_cell_is_marked_failed_and_the_others_are_packed():
    ok = PackingRequest({"Si": 8, "O": 16}, 17.0, 3, {"structure_id": "fine"})
    dense = PackingRequest({"Si": 8, "O": 16}, 1.5, 1, {"structure_id": "too-dense"})
    cells = pack([ok, dense], min_distance_scale=1.1, max_steps=200)
    assert (cells[1].info["status"] == "failed"
            and "too-dense: closest pair" in cells[1].info["reason"])
    assert "status" not in cells[0].info and min_pair_ratio(cells[0], 1.1)[0] >= 0.999
