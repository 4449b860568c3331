"""Batched evaluation of force-field candidates: one torch-sim batch of q x replicas liquid cells,
each system with its own parameters (``PerSystemPairModel``), then R_chi of every candidate.

Every candidate starts from the same starting liquids (one per replica: packed, FIRE-relaxed and
pre-melted at the state point with the base set) with the same seeded velocities, so differences
between candidates come from their parameters, not from their starts. The MD is NVT
(Nose-Hoover chain): optional FIRE steps with the candidate's own parameters, equilibration,
then frames every ``sample_every`` steps. With the glass protocol (``melt_temperature_K``) the
starts are pre-melted and equilibrated at the melt temperature and each candidate is cooled
linearly to the state point's temperature before its frames are taken. g(r) is averaged over
the frames and replicas. Every ``guard_every`` steps each cell is checked
(``vitriflow.md.check_structure``: finite energy, forces and positions, no pair closer than the
guard, no temperature runaway, against the thermostat's temperature); a candidate whose
cell fails leaves the batch with its reason and gets ``failure_cost``, never an exception.

On a CPU, ``md.workers`` > 1 splits a round's candidates into that many contiguous shards, each
run as one batch in its own process on one thread (a pool kept for the whole fit). A CPU runs
these small per-pair kernels and scatters barely faster on two threads than on one, so one batch
per core is what uses the cores. Every candidate starts from the same liquid with the same
velocities in any shard, so short runs score exactly as in one batch (tests check); over long
float32 runs the trajectories part in the last bits, where neighbour lists are rebuilt at other
steps, and scores agree within the replica noise. A given ``workers`` is deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

log = logging.getLogger("vitriflow.forcefield_fit")

__all__ = ["CandidateResult", "Evaluator", "StatePoint"]


def derived_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from the master seed and labels (stable across processes)."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


@dataclass(frozen=True)
class StatePoint:
    """The liquid every candidate simulates (``forcefield_fit.state_point`` + grid + md)."""

    counts: Mapping[str, int]
    temperature_K: float
    density_g_cm3: float
    melt_temperature_K: float | None
    quench_steps: int
    timestep_fs: float
    thermostat_tau_fs: float
    premelt_steps: int
    prerelax_steps: int
    equilibration_steps: int
    sampling_steps: int
    sample_every: int
    guard_every: int
    replicas: int
    min_distance_scale: float
    max_temperature_factor: float
    seed: int
    r_max: float
    dr: float
    dtype: str
    compile: bool
    skin: float
    workers: int

    @classmethod
    def from_section(cls, section: Mapping[str, Any], counts: Mapping[str, int]) -> StatePoint:
        sp, md, ref = section["state_point"], section["md"], section["reference"]
        keys = ("temperature_K", "density_g_cm3", "melt_temperature_K", "quench_steps",
                "timestep_fs", "thermostat_tau_fs",
                "premelt_steps", "prerelax_steps", "equilibration_steps", "sampling_steps",
                "sample_every", "guard_every", "replicas", "min_distance_scale",
                "max_temperature_factor")
        return cls(counts=dict(counts), **{k: sp[k] for k in keys},
                   seed=section["budget"]["seed"], r_max=ref["r_max"], dr=ref["dr"],
                   dtype=md["dtype"], compile=md["compile"], skin=md["skin"],
                   workers=md["workers"])

    @property
    def n_atoms(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def cell_length(self) -> float:
        from vitriflow.forcefield_fit.space import cell_length

        return cell_length(self.counts, self.density_g_cm3)

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    @property
    def start_temperature_K(self) -> float:
        """Temperature of the starting liquids and of equilibration: the melt's for the glass
        protocol, else the state point's."""
        return self.melt_temperature_K or self.temperature_K

    @property
    def total_steps(self) -> int:
        return self.equilibration_steps + self.quench_steps + self.sampling_steps

    def setpoint_K(self, step: int) -> float:
        """Thermostat temperature of MD step ``step`` (0-based): the melt, the linear quench,
        then the state point."""
        t0, t1 = self.start_temperature_K, self.temperature_K
        k = step - self.equilibration_steps
        if k < 0:
            return t0
        if k < self.quench_steps:
            return t0 + (t1 - t0) * (k + 1) / self.quench_steps
        return t1

    def protocol(self):
        """The candidates' MD as a ``vitriflow.md.Protocol`` (its guard settings are used)."""
        from vitriflow.config import with_defaults
        from vitriflow.md import Protocol

        t, t0 = self.temperature_K, self.start_temperature_K
        stages = []
        if self.equilibration_steps:
            stages.append({"name": "equilibrate", "ensemble": "nvt",
                           "steps": self.equilibration_steps, "temperature_K": t0})
        if self.quench_steps:
            stages.append({"name": "quench", "ensemble": "nvt", "steps": self.quench_steps,
                           "temperature_K": [t0, t]})
        stages.append({"name": "sample", "ensemble": "nvt", "steps": self.sampling_steps,
                       "temperature_K": t})
        cfg = with_defaults("config#protocol", {
            "stages": stages, "timestep_fs": self.timestep_fs,
            "thermostat_tau_fs": self.thermostat_tau_fs, "prerelax_steps": self.prerelax_steps,
            "relax": {"enabled": False}, "checkpoint_every": self.guard_every,
            "sample_every": self.sample_every,
            "guard": {"min_distance_scale": self.min_distance_scale,
                      "max_temperature_factor": self.max_temperature_factor}})
        return Protocol.from_config(cfg, where="forcefield_fit.state_point")


@dataclass
class CandidateResult:
    """One candidate's outcome: status ``ok`` or ``failed`` (with the reason), its averaged
    g(r) and cost (``failure_cost`` when failed)."""

    name: str
    status: str
    reason: str = ""
    cost: float = math.nan
    terms: dict[str, float] = field(default_factory=dict)
    rdf: Any = None  # vitriflow.analysis.rdf.RDF averaged over frames and replicas
    n_frames: int = 0
    angles: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    replica_rdfs: list = field(default_factory=list)  # each replica's g(r), averaged over frames


def _maxwell_boltzmann(numbers: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Momenta at ``temperature`` from a seeded generator, total momentum removed."""
    import torch_sim as ts
    from ase.data import atomic_masses

    masses = atomic_masses[numbers]
    rng = np.random.default_rng(seed)
    kT = temperature * ts.units.MetalUnits.temperature
    p = rng.standard_normal((len(numbers), 3)) * np.sqrt(masses * kT)[:, None]
    return p - p.mean(axis=0, keepdims=True)


class Evaluator:
    """Runs batches of candidates at one state point and scores them against a reference.

    ``settings``: the Coulomb settings every set uses (``FitSpace.settings``); ``base``: the
    (comparison-normalised) set that makes the starting liquids. The per-system model is built
    once and reused (a compiled kernel compiles once per process).
    """

    def __init__(self, state_point: StatePoint, reference, base, settings: Mapping[str, Any],
                 device: str | torch.device = "cpu") -> None:
        self.sp = state_point
        self.reference = reference
        self.base = base
        self.settings = dict(settings)
        self.device = torch.device(device)
        self.dtype = state_point.torch_dtype
        self.protocol = state_point.protocol()
        self._starts = None
        self._model = None
        self._pool = None
        self.atom_steps = 0

    def close(self) -> None:
        """Stop the worker processes (``md.workers`` > 1); a later round starts them again."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # ---------------------------------------------------------------- starting liquids
    def starting_liquids(self):
        """One liquid per replica at the state point (packed with a seed, FIRE-relaxed and
        pre-melted by Langevin dynamics with the base set); computed once."""
        if self._starts is None:
            self._starts = self._make_starts()
        return self._starts

    def _make_starts(self):
        import torch_sim as ts

        from vitriflow.potentials.classical import ClassicalPairModel
        from vitriflow.structures.packing import PackingRequest, pack

        sp = self.sp
        volume_per_atom = sp.cell_length**3 / sp.n_atoms
        requests = [PackingRequest(dict(sp.counts), volume_per_atom,
                                   seed=derived_seed(sp.seed, "pack", r),
                                   info={"structure_id": f"start-{r}"})
                    for r in range(sp.replicas)]
        cells = pack(requests, device=str(self.device))
        bad = [a.info["reason"] for a in cells if a.info.get("status") == "failed"]
        if bad:
            raise RuntimeError(f"forcefield_fit starting liquids: {bad[0]}")
        model = ClassicalPairModel(self.base, **self.settings, walls=False, skin=sp.skin,
                                   device=self.device, dtype=self.dtype, compute_stress=False)
        state = ts.io.atoms_to_state(cells, device=self.device, dtype=self.dtype)
        state = self._fire(state, model, 200)
        if sp.premelt_steps:
            units = ts.units.MetalUnits
            kt = torch.tensor(sp.start_temperature_K * units.temperature, device=self.device,
                              dtype=self.dtype)
            dt = torch.tensor(sp.timestep_fs * 1e-3 * units.time, device=self.device,
                              dtype=self.dtype)
            gamma = torch.tensor(1.0 / (sp.thermostat_tau_fs * 1e-3 * units.time),
                                 device=self.device, dtype=self.dtype)
            state.rng = derived_seed(sp.seed, "premelt")
            md = ts.nvt_langevin_init(state, model, kT=kt)
            for _ in range(sp.premelt_steps):
                md = ts.nvt_langevin_step(md, model, dt=dt, kT=kt, gamma=gamma)
            self.atom_steps += sp.premelt_steps * sp.n_atoms * sp.replicas
            state = md
        out = state.to_atoms()
        for a in out:
            if not np.all(np.isfinite(a.positions)):
                raise RuntimeError(f"forcefield_fit starting liquids: the base set "
                                   f"{self.base.name!r} blew up at the state point")
            a.wrap()
        return out

    @staticmethod
    def _fire(state, model, steps: int):
        """``steps`` FIRE steps on every system of the batch (no system leaves the batch, which
        a per-system model needs)."""
        import torch_sim as ts

        if steps <= 0:
            return state
        if hasattr(model, "reset_cache"):
            model.reset_cache()
        opt = ts.fire_init(state, model)
        for _ in range(steps):
            opt = ts.fire_step(opt, model)
        return opt

    # ---------------------------------------------------------------- batches
    def model_for(self, parameter_sets: Sequence):
        """The per-system model holding ``parameter_sets`` (one per cell of the batch)."""
        from vitriflow.potentials.classical import PerSystemPairModel

        if self._model is None:
            self._model = PerSystemPairModel(
                list(parameter_sets), **self.settings, walls=False, skin=self.sp.skin,
                device=self.device, dtype=self.dtype, compute_stress=False,
                compile=self.sp.compile)
        else:
            self._model.set_parameters(list(parameter_sets))
        return self._model

    def evaluate(self, parameter_sets: Sequence, failure_cost: float) -> list[CandidateResult]:
        """Simulate every set (x replicas) as one batch; their results in order."""
        sets = list(parameter_sets)
        if not sets:
            return []
        shards = self._shards(len(sets))
        if len(shards) > 1:
            frames, reasons = self._run_sharded(sets, shards)
        else:
            frames, reasons = self._run(sets)
        for p, why in zip(sets, reasons, strict=True):
            if why:
                log.warning("candidate %s failed: %s", p.name, why)
        return [self._score(p, frames[k], reasons[k], failure_cost) for k, p in enumerate(sets)]

    def _shards(self, n: int) -> list[np.ndarray]:
        """Contiguous index ranges of the candidates, one per worker process (one on a GPU)."""
        workers = min(self.sp.workers, n) if self.device.type == "cpu" else 1
        return np.array_split(np.arange(n), workers)

    def _run_sharded(self, sets: list, shards: list[np.ndarray]) -> tuple[list, list[str]]:
        """``_run`` of each shard in a worker process; results in the candidates' order."""
        pool = self._worker_pool()
        futures = [pool.submit(_run_shard, [sets[i] for i in idx]) for idx in shards]
        frames, reasons = [], []
        for fut in futures:
            f, r, steps = fut.result()
            frames += f
            reasons += r
            self.atom_steps += steps
        return frames, reasons

    def _worker_pool(self):
        """Worker processes (spawned: a forked torch with live threads can deadlock), each with
        an evaluator of its own on one thread; started once and kept for later rounds."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            starts = self.starting_liquids()
            self._pool = ProcessPoolExecutor(
                self.sp.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_shard_worker,
                initargs=(replace(self.sp, workers=1), self.base, self.settings, starts))
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
        return self._pool

    def _score(self, p, frames, reason: str, failure_cost: float) -> CandidateResult:
        from ase import Atoms

        from vitriflow.analysis.rdf import average_rdf, rdf

        if reason:
            return CandidateResult(p.name, "failed", reason, float(failure_cost))
        species = sorted(self.sp.counts)
        per_replica = [[rdf(Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True),
                            self.sp.r_max, self.sp.dr, species) for pos in replica_frames]
                       for numbers, cell, replica_frames in frames]
        curves = [c for rep in per_replica for c in rep]
        if not curves:
            return CandidateResult(p.name, "failed", "no frames sampled", float(failure_cost))
        g = average_rdf(curves)
        try:
            cost, terms = self.reference.cost(g)
        except (ValueError, KeyError) as exc:
            return CandidateResult(p.name, "failed", f"cost: {exc}", float(failure_cost), rdf=g)
        if not math.isfinite(cost):
            return CandidateResult(p.name, "failed", "non-finite R_chi", float(failure_cost), rdf=g)
        return CandidateResult(p.name, "ok", "", float(cost), terms, g, len(curves),
                               self._angles(g, frames), [average_rdf(r) for r in per_replica])

    def _angles(self, g, frames, per_replica: int = 10, bin_deg: float = 2.0):
        """Bond-angle distributions (anion-cation-anion, cation-anion-cation) over up to
        ``per_replica`` evenly spaced frames of each replica; cation-anion cutoffs at the first
        minimum of the candidate's own g(r), as the analysis stage finds them."""
        from ase import Atoms

        from vitriflow.analysis.coordination import (
            ANIONS,
            angle_histogram,
            bond_angles,
            default_triplets,
            first_minimum,
        )

        dr = float(g.edges[1] - g.edges[0])
        cutoffs = {}
        for name, curve in g.partials.items():
            a, b = name.split("-")
            if a != b and ((a in ANIONS) != (b in ANIONS)):
                cutoffs[(a, b)] = first_minimum(g.r, curve, dr)[1]
        triplets = default_triplets(cutoffs)
        if not triplets:
            return {}
        collected: dict[tuple, list] = {t: [] for t in triplets}
        for numbers, cell, replica_frames in frames:
            picks = np.unique(np.linspace(0, len(replica_frames) - 1,
                                          min(per_replica, len(replica_frames))).astype(int))
            for k in picks:
                atoms = Atoms(numbers=numbers, positions=replica_frames[k], cell=cell, pbc=True)
                for t, ang in bond_angles(atoms, triplets, cutoffs).items():
                    collected[t].append(ang)
        out = {}
        for t, parts in collected.items():
            if parts:
                out["-".join(t)] = angle_histogram(np.concatenate(parts), bin_deg)
        return out

    def _run(self, sets: list) -> tuple[list[list], list[str]]:
        """The batched MD. Returns per candidate the sampled frames of each replica
        ``[(numbers, cell, [positions, ...]), ...]`` and the failure reason ('' if none)."""
        import torch_sim as ts
        from torch_sim.integrators.md import MDState

        from vitriflow.md import check_structure

        sp, dev, dt_ = self.sp, self.device, self.dtype
        units = ts.units.MetalUnits
        starts = self.starting_liquids()
        n_r = sp.replicas
        # cell c = candidate k, replica r (k-major)
        owners = [(k, r) for k in range(len(sets)) for r in range(n_r)]
        numbers = [starts[r].numbers.copy() for _, r in owners]
        cell_np = [np.array(starts[r].cell.array) for _, r in owners]
        reasons = [""] * len(sets)
        frames: list[list] = [[(starts[r].numbers.copy(), np.array(starts[r].cell.array), [])
                               for r in range(n_r)] for _ in sets]
        alive = list(range(len(owners)))

        def build(idx, pos, mom):
            n = [len(numbers[c]) for c in idx]
            from ase.data import atomic_masses

            z = np.concatenate([numbers[c] for c in idx])
            return MDState(
                positions=torch.as_tensor(pos, device=dev, dtype=dt_),
                momenta=torch.as_tensor(mom, device=dev, dtype=dt_),
                masses=torch.as_tensor(atomic_masses[z], device=dev, dtype=dt_),
                cell=torch.as_tensor(np.stack([cell_np[c].T for c in idx]), device=dev,
                                     dtype=dt_),
                pbc=True, atomic_numbers=torch.as_tensor(z, device=dev),
                system_idx=torch.as_tensor(np.repeat(np.arange(len(idx)), n), device=dev),
                energy=torch.zeros(len(idx), device=dev, dtype=dt_),
                forces=torch.zeros(len(z), 3, device=dev, dtype=dt_))

        model = self.model_for([sets[k] for k, _ in owners])
        pos0 = np.concatenate([starts[r].positions for _, r in owners])
        mom0 = np.concatenate([np.zeros((len(numbers[c]), 3)) for c in alive])
        state = build(alive, pos0, mom0)
        if sp.prerelax_steps:
            try:
                relaxed = self._fire(state, model, sp.prerelax_steps)
                pos = relaxed.positions.detach().cpu().numpy()
                offsets = np.cumsum([0] + [len(numbers[c]) for c in alive])
                for i in range(len(alive)):  # keep the start where FIRE went non-finite
                    sl = slice(offsets[i], offsets[i + 1])
                    if np.all(np.isfinite(pos[sl])):
                        pos0[sl] = pos[sl]
            except (RuntimeError, ValueError, FloatingPointError) as exc:
                log.warning("candidate FIRE steps failed (%s); starting from the liquids as they "
                            "are", " ".join(str(exc).split())[:120])
        mom0 = np.concatenate([_maxwell_boltzmann(numbers[c], sp.start_temperature_K,
                                                  derived_seed(sp.seed, "velocities", owners[c][1]))
                               for c in alive])
        state = build(alive, pos0, mom0)

        fixed_kt = {t: torch.tensor(t * units.temperature, device=dev, dtype=dt_)
                    for t in (sp.start_temperature_K, sp.temperature_K)}

        def kt_at(s):  # thermostat kT of step s (a new tensor only inside the quench)
            t = sp.setpoint_K(s)
            kt = fixed_kt.get(t)
            return kt if kt is not None else torch.tensor(t * units.temperature, device=dev,
                                                          dtype=dt_)

        dt = torch.tensor(sp.timestep_fs * 1e-3 * units.time, device=dev, dtype=dt_)
        tau = torch.tensor(sp.thermostat_tau_fs * 1e-3 * units.time, device=dev, dtype=dt_)

        def nh_init(st, s):
            model.reset_cache()
            return ts.nvt_nose_hoover_init(st, model, kT=kt_at(s), dt=dt, tau=tau, chain_length=3,
                                           chain_steps=1, sy_steps=1)

        md = nh_init(state, 0)
        total = sp.total_steps
        first_sampled = sp.equilibration_steps + sp.quench_steps
        step = 0
        while step < total and alive:
            end = min(total, step + sp.guard_every)
            for s in range(step, end):
                md = ts.nvt_nose_hoover_step(md, model, dt=dt, kT=kt_at(s))
                k_sample = s + 1 - first_sampled
                if k_sample > 0 and k_sample % sp.sample_every == 0:
                    pos = md.positions.detach().cpu().numpy().astype(np.float64)
                    offsets = np.cumsum([0] + [len(numbers[c]) for c in alive])
                    for i, c in enumerate(alive):
                        k, r = owners[c]
                        frames[k][r][2].append(pos[offsets[i]:offsets[i + 1]].copy())
            self.atom_steps += (end - step) * sum(len(numbers[c]) for c in alive)
            failed = self._guard(md, alive, numbers, cell_np, step, end, check_structure)
            step = end
            if not failed:
                continue
            for c, why in failed.items():
                k, r = owners[c]
                if not reasons[k]:
                    reasons[k] = f"replica {r}: {why}"
            keep = [i for i, c in enumerate(alive) if not reasons[owners[c][0]]]
            if not keep:
                alive = []
                break
            sizes = [len(numbers[c]) for c in alive]
            alive = [alive[i] for i in keep]
            state, chain = self._subset(md, keep, sizes, build, alive)
            model.set_parameters([sets[owners[c][0]] for c in alive])
            md = nh_init(state, step)
            md.chain.positions, md.chain.momenta = chain
        return frames, reasons

    def _guard(self, md, alive, numbers, cell_np, start, end, check_structure) -> dict[int, str]:
        import torch_sim as ts

        temps = ts.calc_temperature(masses=md.masses, momenta=md.momenta,
                                    system_idx=md.system_idx,
                                    dof_per_system=md.get_number_of_degrees_of_freedom())
        temps = temps.detach().cpu().numpy()
        pos = md.positions.detach().cpu().numpy().astype(np.float64)
        forces = md.forces.detach().cpu().numpy()
        energy = md.energy.detach().cpu().numpy()
        offsets = np.cumsum([0] + [len(numbers[c]) for c in alive])
        failed = {}
        for i, c in enumerate(alive):
            sl = slice(offsets[i], offsets[i + 1])
            why = check_structure(pos[sl], cell_np[c], numbers[c], float(energy[i]), forces[sl],
                                  float(temps[i]), self.sp.setpoint_K(start),
                                  self.protocol)
            if why:
                failed[c] = f"steps {start}-{end}: {why}"
        return failed

    @staticmethod
    def _subset(md, keep, sizes, build, kept_cells):
        """MD state (positions, momenta) and thermostat chains of the kept systems."""
        offsets = np.cumsum([0] + sizes)
        atoms = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in keep])
        pos = md.positions.detach().cpu().numpy()[atoms]
        mom = md.momenta.detach().cpu().numpy()[atoms]
        chain = (md.chain.positions[keep].clone(), md.chain.momenta[keep].clone())
        return build(kept_cells, pos, mom), chain


_SHARD_EVALUATOR: Evaluator | None = None


def _init_shard_worker(state_point: StatePoint, base, settings, starts) -> None:
    """A worker process's evaluator: the parent's state point, base set and starting liquids."""
    global _SHARD_EVALUATOR
    torch.set_num_threads(1)
    _SHARD_EVALUATOR = Evaluator(state_point, None, base, settings)
    _SHARD_EVALUATOR._starts = starts


def _run_shard(sets: list) -> tuple[list, list[str], int]:
    """One shard's MD in a worker: (frames, failure reasons, atom-steps)."""
    ev = _SHARD_EVALUATOR
    before = ev.atom_steps
    frames, reasons = ev._run(sets)
    return frames, reasons, ev.atom_steps - before
