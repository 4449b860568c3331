"""Melt-quench protocols: stages with temperature schedules, built from a validated config.

Torch-free, so the DAG builds every protocol at start-up (``vitriflow.config.load_config``) and
refuses a bad one before any job runs. Every number comes from the config; the defaults live in
the protocol schema only (``schemas/config.schema.yaml``, ``$defs/protocol``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


class ProtocolError(ValueError):
    """A protocol whose numbers are valid one by one but do not make a schedule."""


@dataclass(frozen=True)
class Stage:
    name: str
    ensemble: str
    steps: int
    t_start: float
    t_end: float
    pressure_GPa: float


@dataclass(frozen=True)
class Protocol:
    """A melt-quench protocol: its stages, then an optional FIRE relaxation."""

    stages: tuple[Stage, ...]
    timestep_fs: float
    thermostat_tau_fs: float
    barostat_tau_fs: float
    prerelax_steps: int
    relax_enabled: bool
    relax_fmax: float
    relax_steps: int
    checkpoint_every: int
    log_every: int
    sample_every: int  # frames kept every this many steps of the last stage (0 = none)
    guard_min_distance_scale: float
    guard_max_temperature_factor: float
    max_batch_atoms: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], where: str = "protocol") -> Protocol:
        """A protocol from its config section, validated against the protocol schema with the
        schema's defaults filled in (a section from ``load_config`` passes unchanged)."""
        from vitriflow.config import with_defaults

        cfg = with_defaults("config#protocol", cfg)
        stages = []
        for st in cfg["stages"]:
            t = st["temperature_K"]
            t0, t1 = (t, t) if isinstance(t, int | float) else (t[0], t[1])
            stages.append(Stage(st["name"], st["ensemble"], int(st["steps"]), float(t0), float(t1),
                                float(st["pressure_GPa"])))
        relax, guard = cfg["relax"], cfg["guard"]
        protocol = cls(
            stages=tuple(stages), timestep_fs=cfg["timestep_fs"],
            thermostat_tau_fs=cfg["thermostat_tau_fs"], barostat_tau_fs=cfg["barostat_tau_fs"],
            prerelax_steps=cfg["prerelax_steps"], relax_enabled=relax["enabled"],
            relax_fmax=relax["fmax_eV_A"], relax_steps=relax["max_steps"],
            checkpoint_every=cfg["checkpoint_every"], log_every=cfg["log_every"],
            sample_every=cfg["sample_every"],
            guard_min_distance_scale=guard["min_distance_scale"],
            guard_max_temperature_factor=guard["max_temperature_factor"],
            max_batch_atoms=cfg["max_batch_atoms"],
        )
        protocol.check(where)
        return protocol

    def check(self, where: str = "protocol") -> None:
        """Refuse schedules the schema cannot see, in one line naming the key."""
        last = self.stages[-1]
        if self.sample_every and self.sample_every > last.steps:
            raise ProtocolError(
                f"{where}.sample_every: {self.sample_every} is more than the {last.steps} steps of "
                f"its last stage ({last.name!r}), so no frame would be kept; expected at most "
                f"{last.steps} (0 = no frames)")
        if self.total_steps == 0:
            raise ProtocolError(
                f"{where}.stages: every stage has 0 steps; expected at least one step")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def is_sample_step(self, step: int) -> bool:
        """True when the state after global step ``step`` is kept as a sample: every
        ``sample_every`` steps of the last stage, counted from its start (its end included when
        it falls on one)."""
        if self.sample_every <= 0:
            return False
        last_start = self.total_steps - self.stages[-1].steps
        return step + 1 > last_start and (step + 1 - last_start) % self.sample_every == 0

    def stage_at(self, step: int) -> tuple[int, Stage, int]:
        """(stage index, stage, step within the stage) of global step ``step``."""
        start = 0
        for i, st in enumerate(self.stages):
            if step < start + st.steps:
                return i, st, step - start
            start += st.steps
        raise IndexError(step)

    def target_temperature(self, step: int) -> float:
        """Target T of global step ``step`` (linear ramp inside a stage, ends included)."""
        _, st, k = self.stage_at(step)
        if st.steps <= 1:
            return st.t_end
        return st.t_start + (st.t_end - st.t_start) * k / (st.steps - 1)

    def segment_end(self, start: int) -> int:
        """End (exclusive) of the segment starting at ``start``: next checkpoint or stage edge."""
        edge = 0
        for st in self.stages:
            edge += st.steps
            if edge > start:
                break
        nxt = (start // self.checkpoint_every + 1) * self.checkpoint_every
        return min(edge, nxt, self.total_steps)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]
