"""Melt-quench driver: schedule, stability guard, retries, resume (CPU, classical potential)."""

import numpy as np
import pytest
import torch

from vitriflow.md import Protocol, fire_relax, prerelax, run_melt_quench
from vitriflow.potentials import load_model
from vitriflow.structures.packing import PackingRequest, pack

PROTO = {
    "timestep_fs": 1.0,
    "stages": [
        {"name": "melt", "steps": 20, "temperature_K": 3000},
        {"name": "quench", "steps": 20, "temperature_K": [3000, 300]},
        {"name": "npt", "ensemble": "npt", "steps": 10, "temperature_K": 300},
    ],
    "checkpoint_every": 10,
    "log_every": 5,
    "prerelax_steps": 100,
    "relax": {"max_steps": 10},
}


@pytest.fixture(scope="module")
def model():
    return load_model("teter")


@pytest.fixture(scope="module")
def cells():
    reqs = [PackingRequest({"Si": 8, "O": 16}, 17.0, 10 + i,
                           {"structure_id": f"sio2-r{i}", "seed": 10 + i}) for i in range(3)]
    return pack(reqs)


def test_schedule_ramps_linearly_and_segments_stop_at_stage_edges():
    p = Protocol.from_config(PROTO)
    assert p.total_steps == 50
    assert p.target_temperature(0) == 3000 and p.target_temperature(20) == 3000
    assert p.target_temperature(39) == pytest.approx(300)
    assert p.target_temperature(29) == pytest.approx(3000 - 2700 * 9 / 19)
    assert [p.segment_end(s) for s in (0, 10, 20, 40)] == [10, 20, 30, 50]


def test_protocol_defaults_follow_the_paper():
    p = Protocol.from_config({"stages": [{"name": "melt", "steps": 1500, "temperature_K": 3000}]})
    assert p.timestep_fs == 2.0 and p.thermostat_tau_fs == 100.0


def test_unstable_structure_fails_alone(model, cells, tmp_path):
    relaxed = prerelax(cells, model, 100, "cpu")
    bad = relaxed[0].copy()
    bad.info = dict(relaxed[0].info, structure_id="blow-up")
    bad.positions[1] = bad.positions[0] + [0.3, 0, 0]  # two atoms 0.3 Å apart
    proto = dict(PROTO, prerelax_steps=0)
    final, trace = run_melt_quench([bad, *relaxed[1:]], model, Protocol.from_config(proto),
                                   tmp_path / "ck.pt", progress=False)
    status = {a.info["structure_id"]: a.info for a in final}
    assert status["blow-up"]["status"] == "failed"
    assert "step" in status["blow-up"]["reason"]
    for sid in ("sio2-r1", "sio2-r2"):
        assert status[sid]["status"] == "ok", status[sid]
        assert np.isfinite(status[sid]["energy_eV"])
    assert {r["structure_id"] for r in trace} >= {"sio2-r1", "sio2-r2"}


def test_cell_that_failed_packing_is_passed_through_as_failed(model, cells, tmp_path):
    bad = cells[0].copy()
    bad.info = dict(cells[0].info, structure_id="unpacked", status="failed",
                    reason="packing: too dense")
    final, trace = run_melt_quench([bad, cells[1]], model, Protocol.from_config(PROTO),
                                   tmp_path / "p.pt", progress=False)
    assert final[0].info["status"] == "failed" and final[0].info["reason"] == "packing: too dense"
    np.testing.assert_array_equal(final[0].positions, bad.get_positions(wrap=True))  # never moved
    assert final[1].info["status"] == "ok" and {r["structure_id"] for r in trace} == {"sio2-r1"}


def test_killed_run_resumes_to_identical_structures(model, cells, tmp_path):
    p = Protocol.from_config(PROTO)
    straight, trace_a = run_melt_quench(cells, model, p, tmp_path / "a.pt", progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_melt_quench(cells, model, p, tmp_path / "b.pt", progress=False, stop_after_segments=3)
    assert (tmp_path / "b.pt").is_file()
    resumed, trace_b = run_melt_quench(cells, model, p, tmp_path / "b.pt", progress=False)
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
        assert a.info["energy_eV"] == b.info["energy_eV"]
    assert [r["temperature_K"] for r in trace_a] == [r["temperature_K"] for r in trace_b]


def test_rerun_from_a_finished_checkpoint_gives_bitwise_the_same_energies(cells, tmp_path):
    """A rerun whose checkpoint says every structure is done only relaxes; the classical model's
    cached neighbour list (left by the last MD segment in the first run, absent in the rerun)
    must not change the relaxation's arithmetic."""
    p = Protocol.from_config(PROTO)
    first, _ = run_melt_quench(cells, load_model("teter"), p, tmp_path / "done.pt", progress=False)
    again, _ = run_melt_quench(cells, load_model("teter"), p, tmp_path / "done.pt", progress=False)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.info["energy_eV"] == b.info["energy_eV"]


def test_checkpoint_of_other_input_cells_with_the_same_ids_is_not_resumed(model, cells, tmp_path):
    p = Protocol.from_config(PROTO)
    with pytest.raises(KeyboardInterrupt):
        run_melt_quench(cells, model, p, tmp_path / "k.pt", progress=False, stop_after_segments=3)
    other = pack([PackingRequest({"Si": 8, "O": 16}, 17.0, 99 + i, dict(a.info))
                  for i, a in enumerate(cells)])  # another packing seed, same structure ids
    assert not np.allclose(other[0].positions, cells[0].positions)
    fresh, _ = run_melt_quench(other, model, p, tmp_path / "f.pt", progress=False)
    reused, _ = run_melt_quench(other, model, p, tmp_path / "k.pt", progress=False)
    for a, b in zip(fresh, reused, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)


def test_unreadable_checkpoint_is_run_afresh(model, cells, tmp_path):
    p = Protocol.from_config(PROTO)
    damaged = tmp_path / "d.pt"
    damaged.write_bytes(b"PK\x03\x04 truncated by a full disk")
    fresh, _ = run_melt_quench(cells[:1], model, p, tmp_path / "e.pt", progress=False)
    rerun, _ = run_melt_quench(cells[:1], model, p, damaged, progress=False)
    np.testing.assert_array_equal(fresh[0].positions, rerun[0].positions)


class _RefusesCellsOf(torch.nn.Module):
    """A potential that raises for any batch holding a cell of ``n_bad`` atoms."""

    def __init__(self, inner, n_bad):
        super().__init__()
        self.inner, self.n_bad = inner, n_bad

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def forward(self, state, **kw):
        if (torch.bincount(state.system_idx) == self.n_bad).any():
            raise RuntimeError("cannot evaluate this cell")
        return self.inner(state, **kw)


def test_relaxation_isolates_a_structure_the_potential_cannot_evaluate(model, cells):
    odd = pack([PackingRequest({"Si": 9, "O": 18}, 17.0, 5, {"structure_id": "odd", "seed": 5})])[0]
    picky = _RefusesCellsOf(model, len(odd))
    relaxed, energies, reasons = fire_relax([cells[0], odd, cells[1]], picky, "cpu", 0.1, 20)
    assert relaxed[1] is None and "cannot evaluate this cell" in reasons[1]
    alone, e_alone, _ = fire_relax([cells[0]], model, "cpu", 0.1, 20)
    np.testing.assert_allclose(relaxed[0].positions, alone[0].positions, atol=1e-8)
    assert np.isfinite(energies[[0, 2]]).all()
    out = prerelax([cells[0], odd], picky, 20, "cpu")  # the packed cell is kept for the MD guard
    np.testing.assert_array_equal(out[1].positions, odd.positions)
    assert (out[1].info["structure_id"] == "odd"
            and not np.allclose(out[0].positions, cells[0].positions))


def test_quench_reaches_target_temperature_and_npt_changes_the_cell(model, cells, tmp_path):
    final, trace = run_melt_quench(cells[:1], model, Protocol.from_config(PROTO),
                                   tmp_path / "c.pt", progress=False)
    assert final[0].info["status"] == "ok"
    assert not np.allclose(final[0].cell.array, cells[0].cell.array)  # NPT relaxed the volume
    hot = [r["temperature_K"] for r in trace if r["stage"] == "melt"]
    assert 1000 < np.mean(hot) < 6000


def test_elemental_reference_that_cannot_be_relaxed_is_dropped_alone(model, monkeypatch):
    from ase.build import bulk

    import vitriflow.md.elemental_refs as md_refs

    si2, si8 = bulk("Si", "diamond", a=5.43), bulk("Si", "diamond", a=5.43, cubic=True)
    o_like = bulk("Si", "diamond", a=5.43) * (1, 1, 2)  # a 4-atom cell the picky model refuses
    o_like.set_chemical_symbols(["O"] * 4)
    for a, mid in ((si2, "mp-149"), (si8, "mp-149c"), (o_like, "mp-12957")):
        a.info.update({"role": "element", "material_id": mid})
    monkeypatch.setattr(md_refs, "is_mlip", lambda name: True)
    monkeypatch.setattr(md_refs, "load_model", lambda *a, **k: _RefusesCellsOf(model, 4))
    refs = md_refs.elemental_reference_energies([si2, si8, o_like], "picky", max_steps=5)
    assert set(refs["energies_per_atom"]) == {"Si"} and np.isfinite(refs["energies_per_atom"]["Si"])
    assert "cannot evaluate this cell" in refs["failed"]["mp-12957"] and refs["reason"] == ""


SAMPLED = dict(  # PROTO's settings, a longer last stage with frames kept every 5 steps
    PROTO, sample_every=5,
    stages=[{"name": "melt", "steps": 10, "temperature_K": 1000},
            {"name": "quench", "steps": 10, "temperature_K": [1000, 300]},
            {"name": "anneal", "steps": 30, "temperature_K": 300}],
    thermostat_tau_fs=5.0,  # a tight thermostat, so that the fast test quench passes the guard
)


def test_sample_steps_are_in_the_last_stage_only():
    p = Protocol.from_config(SAMPLED)
    assert [s + 1 for s in range(p.total_steps) if p.is_sample_step(s)] == [25, 30, 35, 40, 45, 50]
    assert not any(Protocol.from_config(PROTO).is_sample_step(s) for s in range(50))  # default: off


def test_samples_survive_a_kill_and_come_out_as_after_a_straight_run(model, cells, tmp_path):
    """Frames along the last stage are kept in the checkpoint: a run killed half-way through
    that stage gives the same frames as one that was never stopped."""
    p = Protocol.from_config(SAMPLED)
    straight_samples, resumed_samples = [], []
    straight, _ = run_melt_quench(cells[:2], model, p, tmp_path / "a.pt", progress=False,
                                  samples=straight_samples)
    with pytest.raises(KeyboardInterrupt):  # stops at step 30: samples 25 and 30 taken
        run_melt_quench(cells[:2], model, p, tmp_path / "b.pt", progress=False,
                        stop_after_segments=3, samples=resumed_samples)
    run_melt_quench(cells[:2], model, p, tmp_path / "b.pt", progress=False, samples=resumed_samples)
    assert len(straight_samples) == 2 * 6
    assert [(a.info["structure_id"], a.info["sample_step"]) for a in straight_samples] == [
        (sid, step) for sid in ("sio2-r0", "sio2-r1") for step in (25, 30, 35, 40, 45, 50)]
    for a, b in zip(straight_samples, resumed_samples, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.info["sample_step"] == b.info["sample_step"]
    first = straight_samples[0]
    assert (first.info["temperature_target_K"] == 300
            and first.info["time_ps"] == pytest.approx(0.025))
    assert first.info["seed"] == straight[0].info["seed"] and "energy_eV" not in first.info
    # the samples are thermal frames, not the relaxed final structure
    assert not np.allclose(straight_samples[5].positions, straight[0].positions)


def test_unstable_segment_drops_its_samples_and_failed_structures_give_none(model, cells, tmp_path):
    from vitriflow.md.engine import Task, _mark_unstable

    t = Task(sid="x", seed=0, numbers=np.array([14]), positions=np.zeros((1, 3)), cell=np.eye(3),
             samples=[(25, None, None), (30, None, None), (35, None, None)])
    _mark_unstable(t, 30, 40, "test")
    assert [s[0] for s in t.samples] == [25, 30] and t.status == "retry"
    relaxed = prerelax(cells[:2], model, 50, "cpu")
    bad = relaxed[0].copy()
    bad.info = dict(relaxed[0].info, structure_id="blow-up")
    bad.positions[1] = bad.positions[0] + [0.3, 0, 0]
    samples = []
    final, _ = run_melt_quench([bad, relaxed[1]], model,
                               Protocol.from_config(dict(SAMPLED, prerelax_steps=0)),
                               tmp_path / "u.pt", progress=False, samples=samples)
    assert final[0].info["status"] == "failed"
    assert {a.info["structure_id"] for a in samples} == {"sio2-r1"} and len(samples) == 6
