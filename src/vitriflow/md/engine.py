"""Batched melt-quench(-equilibrate) molecular dynamics on torch-sim, with a stability guard
and exact resume.

A protocol is a list of stages (NVT Nose-Hoover chain, or NPT stochastic cell rescaling) with a
per-step target temperature (constant or linear ramp), followed by an optional FIRE relaxation.
Structures are grouped into batches (torch-sim's ``BinningAutoBatcher``: by GPU memory on CUDA,
by ``max_batch_atoms`` on CPU). Each batch advances in *segments* of ``checkpoint_every`` steps
(cut at stage boundaries). After every segment:

- the guard checks each structure (finite energy/forces/positions, no pair closer than
  ``min_distance_scale`` x covalent radii, temperature below ``max_temperature_factor`` x
  target + 500 K); an unstable structure leaves the batch and is later retried once from its
  last good checkpoint with half the time step, then marked failed with the reason;
- every structure's state (positions, momenta, cell, thermostat chain, next step) is written
  to the checkpoint file atomically.

Every segment starts by rebuilding the integrator state from those per-structure snapshots,
and stochastic parts (initial velocities, C-rescale noise) draw from generators seeded from
the structure seeds and the segment start. So a run resumed from any checkpoint follows the
same arithmetic as an uninterrupted one and ends in the same structures (CPU, fixed seed).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from vitriflow.md.protocol import Protocol
from vitriflow.structures.packing import density_g_cm3, min_pair_ratio

log = logging.getLogger("vitriflow.md")
GPA_TO_EV_A3 = 1 / 160.21766208
# below this potential energy per atom a cell has collapsed (a short-range attraction beating the
# repulsion): the deepest real binding is tens of eV/atom, even with formal-charge Coulomb sums
MIN_ENERGY_PER_ATOM_EV = -1000.0


@dataclass
class Task:
    """One structure's progress: its latest good snapshot and status."""

    sid: str
    seed: int
    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    momenta: np.ndarray | None = None
    chain: tuple[np.ndarray, np.ndarray] | None = None  # NH chain positions, momenta
    step: int = 0
    dt_scale: float = 1.0
    status: str = "running"  # running | done | retry | failed
    reason: str = ""
    last_energy: float = float("nan")
    trace: list = field(default_factory=list)
    samples: list = field(default_factory=list)  # (step, positions, cell) along the last stage
    # (step, volume Å^3, potential and kinetic energy eV, pressure tensor xx yy zz yz xz xy GPa)
    # at the trace's steps, kept only when the caller asks for observables
    observables: list = field(default_factory=list)


# ----------------------------------------------------------------------------- guard
def check_structure(positions, cell, numbers, energy: float, forces, temperature: float,
                    target: float, protocol: Protocol) -> str:
    """'' if the structure looks physical, else the reason it is not."""
    if not np.isfinite(energy):
        return "non-finite energy"
    if forces is not None and not np.all(np.isfinite(forces)):
        return "non-finite forces"
    if not np.all(np.isfinite(positions)):
        return "non-finite positions"
    if energy / len(numbers) < MIN_ENERGY_PER_ATOM_EV:  # no real solid binds this deeply
        return f"energy collapse: {energy / len(numbers):.3g} eV/atom"
    limit = protocol.guard_max_temperature_factor * target + 500.0  # target: recent maximum
    if not math.isfinite(temperature) or temperature > limit:
        return f"temperature runaway: {temperature:.0f} K > {limit:.0f} K"
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    ratio, dmin = min_pair_ratio(atoms, protocol.guard_min_distance_scale)
    if ratio < 1.0:
        return (f"pair closer than {protocol.guard_min_distance_scale} x covalent radii "
                f"({dmin:.2f} Å)")
    return ""


# ----------------------------------------------------------------------------- state plumbing
def _maxwell_boltzmann(numbers: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Momenta (amu Å/ps-internal) at ``temperature`` from a per-structure generator.

    The net momentum is removed.
    """
    import torch_sim as ts
    from ase.data import atomic_masses

    masses = atomic_masses[numbers]
    rng = np.random.default_rng(seed)
    kT = temperature * ts.units.MetalUnits.temperature
    p = rng.standard_normal((len(numbers), 3)) * np.sqrt(masses * kT)[:, None]
    p -= p.mean(axis=0, keepdims=True)  # equal split keeps momentum sum zero
    return p


def _build_state(tasks: Sequence[Task], device, dtype):
    from ase.data import atomic_masses
    from torch_sim.integrators.md import MDState

    pos = torch.tensor(np.concatenate([t.positions for t in tasks]), device=device, dtype=dtype)
    mom = torch.tensor(np.concatenate([t.momenta for t in tasks]), device=device, dtype=dtype)
    numbers = np.concatenate([t.numbers for t in tasks])
    sys_idx = torch.tensor(np.repeat(np.arange(len(tasks)), [len(t.numbers) for t in tasks]),
                           device=device)
    return MDState(
        positions=pos, masses=torch.tensor(atomic_masses[numbers], device=device, dtype=dtype),
        cell=torch.tensor(np.stack([t.cell.T for t in tasks]), device=device, dtype=dtype),
        pbc=True, atomic_numbers=torch.tensor(numbers, device=device),
        system_idx=sys_idx, momenta=mom,
        energy=torch.zeros(len(tasks), device=device, dtype=dtype),
        forces=torch.zeros_like(pos),
    )


def _observe(st, model) -> np.ndarray:
    """Per system: volume, potential and kinetic energy, and the instantaneous pressure tensor
    (virial + kinetic, GPa; NaN when the model gives no stress). NVT states carry no stress, so
    it costs one more model call there."""
    import torch_sim as ts

    volume = torch.linalg.det(st.cell).abs()
    kinetic = ts.calc_kinetic_energy(masses=st.masses, momenta=st.momenta, system_idx=st.system_idx)
    stress = getattr(st, "stress", None)
    if stress is None and getattr(model, "compute_stress", False):
        stress = model(st)["stress"]
    if stress is None:
        tensor = torch.full((len(volume), 3, 3), float("nan"), dtype=volume.dtype)
    else:
        tensor = ts.quantities.compute_instantaneous_pressure_tensor(
            momenta=st.momenta, masses=st.masses, system_idx=st.system_idx, stress=stress,
            volumes=volume) / GPA_TO_EV_A3
    voigt = tensor[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    cols = [volume, st.energy, kinetic]
    return torch.cat([torch.stack(cols, dim=1), voigt], dim=1).detach().cpu().numpy()


def _segment(tasks: list[Task], model, protocol: Protocol, device, dtype,
             observe: bool = False) -> None:
    """Advance ``tasks`` (same step pointer and dt) by one segment; update them in place."""
    import torch_sim as ts

    units = ts.units.MetalUnits
    start = tasks[0].step
    end = protocol.segment_end(start)
    _, stage, _ = protocol.stage_at(start)
    dt_scale = tasks[0].dt_scale
    substeps = round(1 / dt_scale)
    dt = torch.tensor(protocol.timestep_fs * 1e-3 * dt_scale * units.time,
                      device=device, dtype=dtype)
    for t in tasks:
        if t.momenta is None:
            t.momenta = _maxwell_boltzmann(t.numbers, protocol.target_temperature(start), t.seed)
    state = _build_state(tasks, device, dtype)
    if hasattr(model, "reset_cache"):  # cached neighbour lists would make resumed runs differ
        model.reset_cache()
    kT0 = protocol.target_temperature(start) * units.temperature
    if stage.ensemble == "nvt":
        tau = protocol.thermostat_tau_fs * 1e-3 * units.time
        st = ts.nvt_nose_hoover_init(state, model, kT=kT0, dt=dt, tau=tau)
        for i, t in enumerate(tasks):
            if t.chain is not None:
                st.chain.positions[i] = torch.as_tensor(t.chain[0], device=device, dtype=dtype)
                st.chain.momenta[i] = torch.as_tensor(t.chain[1], device=device, dtype=dtype)
        step_fn, extra = ts.nvt_nose_hoover_step, {}
    else:
        gen_seed = int(
            hashlib.sha256(f"{start}:{[t.seed for t in tasks]}".encode()).hexdigest()[:8], 16)
        state.rng = gen_seed
        st = ts.npt_crescale_init(state, model, kT=kT0, dt=dt,
                                  tau_p=protocol.barostat_tau_fs * 1e-3 * units.time,
                                  isothermal_compressibility=4.5e-5 / units.pressure)
        step_fn = ts.npt_crescale_isotropic_step
        extra = {"external_pressure": stage.pressure_GPa * 1e4 * units.pressure,
                 "tau": protocol.thermostat_tau_fs * 1e-3 * units.time}
    n_atoms = torch.tensor([len(t.numbers) for t in tasks], device=device, dtype=dtype)
    offsets = np.cumsum([0] + [len(t.numbers) for t in tasks])
    for step in range(start, end):
        kT = torch.tensor(protocol.target_temperature(step) * units.temperature,
                          device=device, dtype=dtype)
        for _ in range(substeps):
            st = step_fn(st, model, dt=dt, kT=kT, **extra)
        if protocol.is_sample_step(step):
            pos = st.positions.detach().cpu().numpy()
            cells = st.cell.detach().cpu().numpy()
            for i, t in enumerate(tasks):
                t.samples.append((step + 1, pos[offsets[i]:offsets[i + 1]].copy(),
                                  cells[i].T.copy()))
        if (step + 1) % protocol.log_every == 0 or step + 1 == end:
            temps = ts.calc_temperature(masses=st.masses, momenta=st.momenta,
                                        system_idx=st.system_idx,
                                        dof_per_system=st.get_number_of_degrees_of_freedom() - 3)
            epa = (st.energy / n_atoms).detach().cpu().numpy()
            for i, t in enumerate(tasks):
                t.trace.append((step + 1, (step + 1) * protocol.timestep_fs * 1e-3, stage.name,
                                float(temps[i]), protocol.target_temperature(step), float(epa[i]),
                                dt_scale))
            if observe:
                obs = _observe(st, model)
                for i, t in enumerate(tasks):
                    t.observables.append((step + 1, *obs[i].tolist()))
    temps = ts.calc_temperature(
        masses=st.masses, momenta=st.momenta, system_idx=st.system_idx,
        dof_per_system=st.get_number_of_degrees_of_freedom() - 3).cpu().numpy()
    pos = st.positions.detach().cpu().numpy()
    mom = st.momenta.detach().cpu().numpy()
    forces = st.forces.detach().cpu().numpy()
    cells = st.cell.detach().cpu().numpy()
    energy = st.energy.detach().cpu().numpy()
    # the thermostat lags a fast ramp: judge against the hottest target of this and the last segment
    target = max(protocol.target_temperature(s)
                 for s in range(max(0, start - protocol.checkpoint_every), end))
    for i, t in enumerate(tasks):
        sl = slice(offsets[i], offsets[i + 1])
        reason = check_structure(pos[sl], cells[i].T, t.numbers, float(energy[i]), forces[sl],
                                 float(temps[i]), target, protocol)
        if reason:
            _mark_unstable(t, start, end, reason)
            continue
        t.positions, t.momenta, t.cell = pos[sl].copy(), mom[sl].copy(), cells[i].T.copy()
        t.chain = ((st.chain.positions[i].detach().cpu().numpy().copy(),
                    st.chain.momenta[i].detach().cpu().numpy().copy())
                   if stage.ensemble == "nvt" else None)
        t.last_energy = float(energy[i])
        t.step = end
        if end == protocol.total_steps:
            t.status = "done"


def _mark_unstable(t: Task, start: int, end: int, reason: str) -> None:
    """Roll ``t`` back to its last good snapshot; retry with dt/2 once, then fail."""
    t.trace = [r for r in t.trace if r[0] <= start]  # drop the bad segment's rows and samples
    t.samples = [smp for smp in t.samples if smp[0] <= start]
    t.observables = [r for r in t.observables if r[0] <= start]
    t.status = "failed" if t.dt_scale < 1.0 else "retry"
    t.reason = f"step {end}: {reason}"
    log.warning("%s unstable in steps %d-%d (%s)%s", t.sid, start, end, reason,
                "" if t.status == "failed" else f"; will retry from step {start} with dt/2")


def _guarded_segment(tasks: list[Task], model, protocol: Protocol, device, dtype,
                     observe: bool = False) -> None:
    """Run a segment; if the model itself fails (a blown-up cell can make neighbour lists or the
    network raise), rerun the segment one structure at a time so only the culprit fails."""
    n_trace = [(len(t.trace), len(t.samples), len(t.observables)) for t in tasks]
    try:
        _segment(tasks, model, protocol, device, dtype, observe)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        for t, (n, m, k) in zip(tasks, n_trace, strict=True):
            del t.trace[n:]
            del t.samples[m:]
            del t.observables[k:]
        start = tasks[0].step
        if len(tasks) == 1:
            msg = " ".join(str(exc).split())[:160]
            _mark_unstable(tasks[0], start, protocol.segment_end(start), f"model error: {msg}")
            return
        log.warning("batch of %d failed in steps %d-%d (%s); isolating the culprit",
                    len(tasks), start, protocol.segment_end(start), type(exc).__name__)
        for t in tasks:
            _guarded_segment([t], model, protocol, device, dtype, observe)


# ----------------------------------------------------------------------------- checkpoints
def save_tasks(path: Path, tasks: Sequence[Task], digest: str) -> None:
    from vitriflow.io import save_checkpoint

    save_checkpoint(path, digest, {"version": 1, "tasks": [asdict(t) for t in tasks]})


def run_digest(structures: Sequence[Atoms], model, protocol: Protocol) -> str:
    """Fingerprint of everything a checkpoint's trajectories depend on: the protocol, the input
    cells (ids are reused when a seed or packing setting changes) and the potential (class,
    dtype, parameters), so that a checkpoint is never resumed for other inputs."""
    from vitriflow.io import structure_key

    h = hashlib.sha256(protocol.digest().encode())
    for a in structures:
        h.update(f"{structure_key(a)}:{a.info.get('seed')}".encode())
    h.update(f"{type(model).__module__}.{type(model).__name__}:"
             f"{getattr(model, 'dtype', '')}".encode())
    if isinstance(model, torch.nn.Module):
        for name, t in model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def load_tasks(path: Path, digest: str, sids: Sequence[str]) -> list[Task] | None:
    """The tasks of a checkpoint of this run (same digest and structure ids), else None."""
    from vitriflow.io import load_checkpoint

    payload = load_checkpoint(path, digest, weights_only=False)  # tasks hold NumPy arrays
    if payload is None:
        return None
    if [t["sid"] for t in payload["tasks"]] != list(sids):
        log.warning("checkpoint %s holds other structures; starting afresh", path)
        return None
    return [Task(**t) for t in payload["tasks"]]


# ----------------------------------------------------------------------------- driver
def _batches(tasks: list[Task], model, protocol: Protocol, device,
             memory: dict | None = None) -> list[list[int]]:
    """Index bins of ``tasks``: torch-sim's autobatcher on CUDA, an atom budget on CPU.

    On CUDA the autobatcher measures how much the GPU holds by probing ever larger batches; a
    run measures that once and keeps it in ``memory`` for its later segments."""
    if torch.device(device).type == "cuda":
        import torch_sim as ts

        states = [ts.io.atoms_to_state(Atoms(numbers=t.numbers, positions=t.positions,
                                             cell=t.cell, pbc=True),
                                       device=torch.device(device), dtype=model.dtype)
                  for t in tasks]
        memory = {} if memory is None else memory
        batcher = ts.BinningAutoBatcher(model=model, memory_scales_with=model.memory_scales_with,
                                        max_memory_scaler=memory.get("max_memory_scaler"))
        batcher.load_states(states)
        memory["max_memory_scaler"] = batcher.max_memory_scaler
        return [list(idx) for _, idx in batcher]
    bins, current, atoms = [], [], 0
    for i, t in enumerate(tasks):
        if current and atoms + len(t.numbers) > protocol.max_batch_atoms:
            bins.append(current)
            current, atoms = [], 0
        current.append(i)
        atoms += len(t.numbers)
    if current:
        bins.append(current)
    return bins


def run_melt_quench(structures: Sequence[Atoms], model, protocol: Protocol,
                    checkpoint: str | os.PathLike, device="cpu", progress: bool = True,
                    stop_after_segments: int | None = None, samples: list | None = None,
                    observables: list | None = None) -> tuple[list[Atoms], list[dict]]:
    """Melt-quench every structure; returns final structures (with status info) and trace rows.

    With ``protocol.sample_every`` set, a list passed as ``samples`` receives the frames kept along
    the last stage (unrelaxed, at its temperature) of every structure that finished, with the
    final structure's info plus ``sample_step``, ``time_ps`` and ``temperature_target_K``.
    They live in the checkpoint, so a resumed run keeps the ones taken before it was killed.
    A list passed as ``observables`` receives, at every trace row, each structure's volume,
    potential and kinetic energy and instantaneous pressure tensor (``OBSERVABLE_COLUMNS``; in NVT
    stages the stress costs one more model call per row); like the samples they live in the
    checkpoint, so pass it on every run of a checkpoint, resumed ones included.
    ``stop_after_segments`` (testing only) raises ``KeyboardInterrupt`` after that many segments,
    as a killed job would stop.
    """
    from tqdm import tqdm

    dtype = model.dtype
    checkpoint = Path(checkpoint)
    sids = [a.info["structure_id"] for a in structures]
    digest = run_digest(structures, model, protocol)
    tasks = load_tasks(checkpoint, digest, sids)
    if tasks is None:
        # a cell marked failed upstream (packing) is passed through as failed, never run
        runnable = [a for a in structures if a.info.get("status") != "failed"]
        relaxed = iter(prerelax(runnable, model, protocol.prerelax_steps, device)
                       if runnable else [])
        tasks = []
        for a in structures:
            failed = a.info.get("status") == "failed"
            b = a if failed else next(relaxed)
            t = Task(sid=a.info["structure_id"], seed=int(a.info["seed"]), numbers=b.numbers.copy(),
                     positions=b.positions.copy(), cell=b.cell.array.copy())
            if failed:
                t.status, t.reason = "failed", a.info.get("reason", "")
            tasks.append(t)
    else:
        done = sum(t.status in ("done", "failed") for t in tasks)
        running = [t.step for t in tasks if t.status not in ("done", "failed")]
        log.info("resuming from %s at step %d of %d (%d/%d structures finished)", checkpoint,
                 min(running, default=protocol.total_steps), protocol.total_steps, done, len(tasks))
    total = protocol.total_steps
    bar = tqdm(total=total * len(tasks), disable=not progress, unit="struct-step", mininterval=5)
    bar.update(sum(t.step for t in tasks))
    segments = 0
    gpu_memory: dict = {}  # the autobatcher's memory estimate, measured once per run
    for phase, scale in (("main", 1.0), ("retry", 0.5)):
        if phase == "retry":
            for t in tasks:
                if t.status == "retry":
                    t.status, t.dt_scale = "running", 0.5
        while True:
            active = [t for t in tasks if t.status == "running" and t.dt_scale == scale]
            if not active:
                break
            first = min(t.step for t in active)
            group = [t for t in active if t.step == first]
            bins = _batches(group, model, protocol, device, gpu_memory)
            _, stage, _ = protocol.stage_at(first)
            if protocol.stage_at(first)[2] == 0:  # log once per stage
                log.info("%s stage '%s' (%s, %d steps, %.0f->%.0f K) for %d structures in "
                         "%d batch(es)",
                         phase, stage.name, stage.ensemble, stage.steps, stage.t_start, stage.t_end,
                         len(group), len(bins))
            for idx in bins:
                before = {id(group[i]): group[i].step for i in idx}
                _guarded_segment([group[i] for i in idx], model, protocol, device, dtype,
                                 observables is not None)
                bar.update(sum(group[i].step - before[id(group[i])] for i in idx))
            save_tasks(checkpoint, tasks, digest)
            segments += 1
            if stop_after_segments is not None and segments >= stop_after_segments:
                raise KeyboardInterrupt(f"stopped after {segments} segments (test)")
    bar.close()
    finals = _finalise(tasks, structures, model, protocol, device)
    if samples is not None:
        samples.extend(_sample_frames(tasks, finals, protocol))
    trace = [{"structure_id": t.sid, "step": r[0], "time_ps": r[1], "stage": r[2],
              "temperature_K": r[3], "target_K": r[4], "energy_per_atom_eV": r[5], "dt_scale": r[6]}
             for t in tasks for r in t.trace]
    if observables is not None:
        observables.extend(_observable_rows(tasks, protocol))
    return finals, trace


OBSERVABLE_COLUMNS = ("volume_A3", "potential_energy_eV", "kinetic_energy_eV", "p_xx_GPa",
                      "p_yy_GPa", "p_zz_GPa", "p_yz_GPa", "p_xz_GPa", "p_xy_GPa")


def _observable_rows(tasks: Sequence[Task], protocol: Protocol) -> list[dict]:
    rows = []
    for t in tasks:
        for r in t.observables:
            _, stage, _ = protocol.stage_at(r[0] - 1)
            rows.append({"structure_id": t.sid, "step": r[0],
                         "time_ps": r[0] * protocol.timestep_fs * 1e-3, "stage": stage.name,
                         "target_K": protocol.target_temperature(r[0] - 1),
                         "pressure_target_GPa": stage.pressure_GPa, "n_atoms": len(t.numbers),
                         **dict(zip(OBSERVABLE_COLUMNS, r[1:], strict=True))})
    return rows


def fire_relax(structures: Sequence[Atoms], model, device, force_tol: float, max_steps: int,
          init_kwargs: dict | None = None) -> tuple[list[Atoms | None], np.ndarray, list[str]]:
    """Batched FIRE; if the batch raises, each structure is relaxed alone so that one the model
    cannot evaluate fails by itself. Returns (relaxed or None, energies, failure reasons).
    ``init_kwargs`` go to the optimiser's init (e.g. a cell filter)."""
    import torch_sim as ts

    def run(batch):
        # start from a fresh neighbour list, as a resumed run does
        if hasattr(model, "reset_cache"):
            model.reset_cache()
        state = ts.io.atoms_to_state(list(batch), device=torch.device(device), dtype=model.dtype)
        state = ts.optimize(system=state, model=model, optimizer=ts.Optimizer.fire,
                            convergence_fn=ts.generate_force_convergence_fn(force_tol=force_tol),
                            max_steps=max_steps, init_kwargs=init_kwargs)
        return state.to_atoms(), state.energy.detach().cpu().numpy().astype(float)

    try:
        relaxed, energies = run(structures)
        return list(relaxed), energies, [""] * len(structures)
    except Exception as exc:
        log.warning("FIRE batch of %d structures failed (%s: %s); relaxing each alone",
                    len(structures), type(exc).__name__, exc)
    relaxed, energies, reasons = [], np.full(len(structures), np.nan), []
    for i, a in enumerate(structures):
        try:
            r, e = run([a])
            relaxed.append(r[0])
            energies[i] = e[0]
            reasons.append("")
        except Exception as exc:
            relaxed.append(None)
            reasons.append(f"relaxation failed: {type(exc).__name__}: {exc}")
            log.error("%s: %s", a.info.get("structure_id", i), reasons[-1])
    return relaxed, energies, reasons


def prerelax(structures: Sequence[Atoms], model, max_steps: int, device) -> list[Atoms]:
    """A short FIRE relaxation with the potential itself before heating.

    Soft-sphere packing leaves pairs at distances the real potential finds very repulsive (or
    very attractive); releasing that energy in the first MD steps heats a 100-atom cell by
    thousands of kelvin. A few FIRE steps remove it deterministically.
    """
    if max_steps <= 0:
        return list(structures)
    relaxed, _, _ = fire_relax(structures, model, device, 0.1, max_steps)
    out = []
    for a, src in zip(relaxed, structures, strict=True):
        if a is None:  # keep the packed cell; the MD guard will judge it
            a = src.copy()
        a.info.update(src.info)
        if not np.all(np.isfinite(a.positions)):
            a.positions = src.positions
        out.append(a)
    return out


def _sample_frames(tasks: Sequence[Task], finals: Sequence[Atoms],
                   protocol: Protocol) -> list[Atoms]:
    """The kept frames of the structures that finished, as Atoms carrying their structure's info."""
    frames = []
    for t, final in zip(tasks, finals, strict=True):
        if final.info.get("status") != "ok":
            continue
        for step, positions, cell in t.samples:
            a = Atoms(numbers=t.numbers, positions=positions, cell=cell, pbc=True)
            a.wrap()
            a.info.update({k: v for k, v in final.info.items()
                           if k not in ("energy_eV", "energy_per_atom_eV", "density_g_cm3")})
            a.info.update(sample_step=int(step), time_ps=step * protocol.timestep_fs * 1e-3,
                          temperature_target_K=protocol.target_temperature(step - 1),
                          density_g_cm3=round(density_g_cm3(a), 5))
            frames.append(a)
    return frames


def _finalise(tasks, structures, model, protocol: Protocol, device) -> list[Atoms]:
    """FIRE-relax the finished structures (batched) and attach energies and status."""
    out = []
    for t, src in zip(tasks, structures, strict=True):
        a = Atoms(numbers=t.numbers, positions=t.positions, cell=t.cell, pbc=True)
        a.wrap()
        a.info.update({k: v for k, v in src.info.items()
                       if k not in ("min_distance_A", "density_g_cm3")})
        a.info["status"] = "ok" if t.status == "done" else "failed"
        a.info["reason"] = (t.reason if t.status != "done"
                            else ("retried with dt/2" if t.dt_scale < 1 else ""))
        a.info["energy_eV"] = t.last_energy
        out.append(a)
    ok = [i for i, a in enumerate(out) if a.info["status"] == "ok"]
    if ok and protocol.relax_enabled and protocol.relax_steps > 0:
        log.info("FIRE relaxation of %d structures (fmax %.3g eV/Å, at most %d steps)",
                 len(ok), protocol.relax_fmax, protocol.relax_steps)
        relaxed, energies, reasons = fire_relax([out[i] for i in ok], model, device,
                                                protocol.relax_fmax, protocol.relax_steps)
        for k, i in enumerate(ok):
            if relaxed[k] is None:
                out[i].info.update(status="failed", reason=reasons[k])
                continue
            if not np.isfinite(energies[k]) or not np.all(np.isfinite(relaxed[k].positions)):
                out[i].info.update(status="failed", reason="relaxation gave non-finite values")
                continue
            out[i].positions = relaxed[k].positions
            out[i].info["energy_eV"] = float(energies[k])
    for a in out:
        a.info["energy_per_atom_eV"] = a.info["energy_eV"] / len(a)
        a.info["density_g_cm3"] = round(density_g_cm3(a), 5)
        a.info["n_atoms"] = len(a)
    return out
