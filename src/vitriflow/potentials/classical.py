"""Classical oxide-glass pair potentials (BKS, CHIK, SHIK, Teter, Pedone) as a torch-sim model.

``ClassicalPairModel`` evaluates, for a batched torch-sim ``SimState`` of many periodic cells of
different compositions, a short-range pair term (Buckingham ``A exp(-B r) - C/r^6 + D/r^24`` or
Pedone's Morse ``+ C/r^12``) plus Coulomb by

* ``"dsf"``: damped shifted force, Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006),
  written exactly as LAMMPS ``coul/dsf`` / ``born/coul/dsf`` (including its self-energy term
  ``-(e_shift/2 + alpha/sqrt(pi)) q_i^2``), so energies compare with LAMMPS one to one;
* ``"wolf"``: the truncated Coulomb of the SHIK papers (Wolf et al., J. Chem. Phys. 110, 8254
  (1999) with alpha = 0), ``q_i q_j [1/r - 1/Rc + (r - Rc)/Rc^2]`` times the smoothing
  ``exp(-gamma^2/(r - Rc)^2)``, as the authors' LAMMPS pair style ``shik/wolf`` (no self term);
* ``"none"``: short range only.

Short range is truncated at ``cutoff`` with ``truncation`` = ``"none"`` (LAMMPS default),
``"shift"`` (energy shifted to zero at the cutoff) or ``"smooth"`` (shifted and multiplied by
``exp(-gamma^2/(r - rc)^2)``, SHIK). Forces and the virial stress are analytic; no autograd.

``PerSystemPairModel`` gives every system of a batch its own parameter set (charges and pair
terms; one Coulomb treatment for all): the candidates of a force-field fit run as one batch.
``buckingham_model`` loads a parameter file (``classical_params.load_parameter_file``).

Speed (neighbour lists: ``vitriflow.potentials.pair_lists``): a Verlet (skin) half neighbour
list is rebuilt only when the two atoms that moved most since the last build have moved more
than skin in all (no pair's length can have changed by more; periodic jumps of wrapped
positions are recognised), or when the atoms or their order change. Rebuilds come from an outer
list reaching ``OUTER_MARGIN`` further, kept on the same rule with that margin. The outer list
comes from vesin (CPU or CUDA), or, for a compiled model on a CPU whose cells are all narrower
than twice its reach, from a compiled test of every atom pair on every periodic image (where a
cell list degenerates to the same search, ~3x faster than vesin and already sorted). Under a
changing cell (NPT) the stored pair vectors are carried along with the cell (affine map
F = h_ref^-1 h) and the list is kept while no pair outside it can have come within the cutoff:
sigma_min(F) (rc + skin) - |u|_1 - |u|_2 > rc, u being each atom's displacement relative to the
affinely mapped build positions and |u|_1, |u|_2 the two largest. A build also
looks up every pair's parameters (by parameter set and element pair) and charge product. Each
step runs one per-pair kernel (pair vectors from the stored list plus the displacements, energy
and force of every pair) and two sums of the pair forces onto the atoms, each in a fixed order
and then subtracted, so deterministic with any thread count: over the i ends a segment sum
(the list is sorted by i end; ``pair_lists.Segments``), over the j ends a 1-D ``scatter_add``
(serial on a CPU, so on a multi-threaded CPU it runs on a second thread). Energies and the
virial are segment sums per system. ``compile=True`` fuses the kernel with ``torch.compile``.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch_sim.models.interface import ModelInterface

from vitriflow.potentials.classical_params import (
    COULOMB_EV_A,
    PARAMETER_SETS,
    ParameterSet,
    load_parameter_file,
    pair_key,
)
from vitriflow.potentials.pair_lists import PairListMixin

__all__ = [
    "PARAMETER_SETS",
    "ClassicalPairModel",
    "ParameterSet",
    "PerSystemPairModel",
    "buckingham_model",
    "load_buckingham",
]

_SYMBOLS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd "
    "Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi"
).split()
_Z = {s: z for z, s in enumerate(_SYMBOLS)}
_COULOMB = ("dsf", "wolf", "none")
_TRUNCATION = ("none", "shift", "smooth")
_SETTINGS = ("coulomb", "alpha", "cutoff", "coulomb_cutoff", "truncation", "smoothing_width")


def _symbol(z: int) -> str:
    return _SYMBOLS[z] if 0 < z < len(_SYMBOLS) else f"Z={z}"


def _resolve(parameter_set: str | ParameterSet) -> ParameterSet:
    if isinstance(parameter_set, ParameterSet):
        return parameter_set
    if parameter_set not in PARAMETER_SETS:
        raise ValueError(
            f"classical potential: unknown parameter set {parameter_set!r}; expected one "
            f"of {', '.join(sorted(PARAMETER_SETS))}"
        )
    return PARAMETER_SETS[parameter_set]


class ClassicalPairModel(PairListMixin, ModelInterface):
    """Batched pair potential + Coulomb for oxide glasses (energy, forces, stress).

    Args:
        parameter_set: name in ``PARAMETER_SETS`` (``bks``, ``chik``, ``shik``, ``teter``,
            ``pedone``) or a ``ParameterSet``.
        coulomb, alpha, cutoff, coulomb_cutoff, truncation, smoothing_width: override the set's
            defaults (see module docstring). ``alpha`` is the DSF damping in 1/Å.
        walls: add the set's vitriflow r^-24 walls (see ``classical_params``).
        skin: Verlet buffer in Å (0 rebuilds the neighbour list at every call).
        compile: fuse the per-pair kernel with ``torch.compile`` (several times faster on CPU,
            most in float32; the first call compiles for ~1 min, later processes reuse
            Inductor's disk cache).
    """

    def __init__(
        self,
        parameter_set: str | ParameterSet = "bks",
        *,
        coulomb: str | None = None,
        alpha: float | None = None,
        cutoff: float | None = None,
        coulomb_cutoff: float | None = None,
        truncation: str | None = None,
        smoothing_width: float | None = None,
        walls: bool = True,
        skin: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        p = _resolve(parameter_set)
        self.parameter_set = p
        self._overrides = {
            "coulomb": coulomb, "alpha": alpha, "cutoff": cutoff,
            "coulomb_cutoff": coulomb_cutoff, "truncation": truncation,
            "smoothing_width": smoothing_width,
        }
        self.coulomb = p.coulomb if coulomb is None else coulomb
        self.alpha = float(p.alpha if alpha is None else alpha)
        self.cutoff = float(p.cutoff if cutoff is None else cutoff)
        self.coulomb_cutoff = float(p.coulomb_cutoff if coulomb_cutoff is None else coulomb_cutoff)
        self.truncation = p.truncation if truncation is None else truncation
        self.smoothing_width = float(
            p.smoothing_width if smoothing_width is None else smoothing_width
        )
        self.walls = bool(walls)
        self.skin = float(skin)
        if self.coulomb not in _COULOMB:
            raise ValueError(
                f"classical potential {p.name}: coulomb={self.coulomb!r}; expected {_COULOMB}"
            )
        if self.truncation not in _TRUNCATION:
            raise ValueError(
                f"classical potential {p.name}: truncation={self.truncation!r}; "
                f"expected {_TRUNCATION}"
            )
        for key, val in (("cutoff", self.cutoff), ("coulomb_cutoff", self.coulomb_cutoff)):
            if not val > 0:
                raise ValueError(f"classical potential {p.name}: {key}={val}; expected > 0 Å")
        if self.alpha < 0 or self.skin < 0 or self.smoothing_width < 0:
            raise ValueError(
                f"classical potential {p.name}: alpha, skin and smoothing_width must be >= 0; got "
                f"{self.alpha}, {self.skin}, {self.smoothing_width}"
            )
        self._device = torch.device(device) if device is not None else torch.device("cpu")
        self._dtype = dtype
        self._compute_forces = compute_forces
        self._compute_stress = compute_stress
        self._memory_scales_with = "n_atoms_x_density"
        self._compile = bool(compile)
        self.max_cutoff = max(self.cutoff, self.coulomb_cutoff if self.coulomb != "none" else 0.0)
        # DSF constants (LAMMPS pair_coul_dsf / pair_born_coul_dsf init_style)
        a, rcc = self.alpha, self.coulomb_cutoff
        erfc_c = math.erfc(a * rcc)
        self._f_shift = -(
            erfc_c / rcc**2 + 2.0 / math.sqrt(math.pi) * a * math.exp(-((a * rcc) ** 2)) / rcc
        )
        self._e_shift = erfc_c / rcc - self._f_shift * rcc
        codes = [_COULOMB.index(self.coulomb), _TRUNCATION.index(self.truncation),
                 float(self.walls)]
        # in state_dict, so run fingerprints (md.run_digest) see every setting and parameter
        self.register_buffer("_settings", torch.tensor(
            [self.alpha, self.cutoff, self.coulomb_cutoff, self.smoothing_width, self.skin, *codes],
            dtype=torch.float64, device=self._device))
        self._per_system = False
        self._use_r24: bool | None = None
        self._install(self._check_sets([p]))
        self._nl: dict | None = None
        self._nl_on_cpu = False
        self.n_neighbor_builds = 0  # lists the kernel ran on
        self.n_outer_builds = 0  # of them, from a new outer search (the rest: outer list)

    # ------------------------------------------------------------------ tables
    def _check_sets(self, sets: Sequence[ParameterSet]) -> list[ParameterSet]:
        """Parameter sets that can share one model: same form, elements and charge rules, and
        the same Coulomb/truncation settings unless the model overrides them."""
        sets = [_resolve(s) for s in sets]
        if not sets:
            raise ValueError("classical potential: expected at least one parameter set")
        first = sets[0]
        for s in sets[1:]:
            for attr in ("form", "elements", "neutralizing_element", "require_all_pairs"):
                if getattr(s, attr) != getattr(first, attr):
                    raise ValueError(
                        f"classical potential: parameter set {s.name!r} has {attr}="
                        f"{getattr(s, attr)!r} but {first.name!r} has {getattr(first, attr)!r}; "
                        "the sets of one model must agree"
                    )
            for attr in _SETTINGS:
                if self._overrides[attr] is None and getattr(s, attr) != getattr(self, attr):
                    raise ValueError(
                        f"classical potential: parameter set {s.name!r} has {attr}="
                        f"{getattr(s, attr)!r} but the model uses {getattr(self, attr)!r}; "
                        f"pass {attr}=... to use one value for every set"
                    )
        return sets

    def _install(self, sets: list[ParameterSet]) -> None:
        """Tables of every set: (5, n_sets * nz * nz) rows A|D0, B|a, C|r0, D|C12, E(rc) indexed
        by pair type (set, Z_i, Z_j), and charges (n_sets, nz)."""
        self.parameter_sets = tuple(sets)
        self._known_z = sorted(_Z[s] for s in sets[0].charges)
        nz = max(self._known_z) + 1
        self._nz = nz
        n = len(sets)
        params = torch.zeros(n, nz, nz, 4, dtype=torch.float64)
        has_pair = torch.zeros(n, nz, nz, dtype=torch.bool)
        q = torch.zeros(n, nz, dtype=torch.float64)
        for k, p in enumerate(sets):
            for key, vals in p.pairs.items():
                a, b = key.split("-")
                za, zb = _Z[a], _Z[b]
                v = [float(x) for x in vals]
                if p.form == "buckingham" and self.walls:
                    v[3] += p.walls.get(key, 0.0)
                params[k, za, zb] = params[k, zb, za] = torch.tensor(v, dtype=torch.float64)
                has_pair[k, za, zb] = has_pair[k, zb, za] = True
            for s, val in p.charges.items():
                q[k, _Z[s]] = val
        # energy of each pair at the short-range cutoff, for "shift" / "smooth"
        rc = torch.tensor(self.cutoff, dtype=torch.float64)
        flat = params.reshape(-1, 4)
        e_rc = self._short_range(rc.expand(flat.shape[0]), flat)[0].reshape(n, nz, nz)
        if self.truncation == "none":
            e_rc = torch.zeros_like(e_rc)
        e_rc = torch.where(has_pair, e_rc, torch.zeros_like(e_rc))
        self._has_pair = has_pair
        known = torch.zeros(nz, dtype=torch.bool)
        known[self._known_z] = True
        self._known_cpu = known
        table = torch.cat([params, e_rc[..., None]], dim=-1).reshape(-1, 5).t().contiguous()
        dd = dict(device=self._device, dtype=self._dtype)
        self.register_buffer("_table", table.to(**dd))
        self.register_buffer("_q", q.to(**dd))
        use_r24 = sets[0].form == "buckingham" and bool((params[..., 3] != 0).any())
        if use_r24 != self._use_r24:
            self._use_r24 = use_r24
            kernel = self._make_kernel()
            self._kernel = torch.compile(kernel, dynamic=True) if self._compile else kernel
        self._nl = None

    def _short_range(self, r: torch.Tensor, prm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw pair energy and dE/dr for parameter rows ``prm`` (n, 4)."""
        p0, p1, p2, p3 = prm.unbind(-1)
        inv_r = 1.0 / r
        if self.parameter_set.form == "pedone":
            x = torch.exp(-p1 * (r - p2))
            inv_r12 = inv_r**12
            e = p0 * ((1.0 - x) ** 2 - 1.0) + p3 * inv_r12
            de = 2.0 * p0 * p1 * (1.0 - x) * x - 12.0 * p3 * inv_r12 * inv_r
            return e, de
        ex = p0 * torch.exp(-p1 * r)
        inv_r6 = inv_r**6
        inv_r24 = inv_r6 * inv_r6
        inv_r24 = inv_r24 * inv_r24
        e = ex - p2 * inv_r6 + p3 * inv_r24
        de = -p1 * ex + (6.0 * p2 * inv_r6 - 24.0 * p3 * inv_r24) * inv_r
        return e, de

    # ------------------------------------------------------------------ charges
    def _set_index(self, sys_idx: torch.Tensor, n_systems: int) -> torch.Tensor:
        """Parameter-set index of every system (all 0 unless parameters are per system)."""
        if not self._per_system:
            return torch.zeros(n_systems, dtype=torch.long, device=sys_idx.device)
        if n_systems != len(self.parameter_sets):
            raise ValueError(
                f"classical potential: the model holds {len(self.parameter_sets)} per-system "
                f"parameter sets but the state has {n_systems} systems; expected one set per "
                "system (set_parameters changes them)"
            )
        return torch.arange(n_systems, device=sys_idx.device)

    def _check_elements(self, z: torch.Tensor, system_idx: torch.Tensor, n_systems: int) -> None:
        p = self.parameter_set
        present = torch.unique(z.cpu()).tolist()
        for zz in present:
            if zz >= self._nz or zz < 0 or not bool(self._known_cpu[zz]):
                raise ValueError(
                    f"classical parameter set '{p.name}' has no parameters for element "
                    f"{_symbol(int(zz))}; it covers {', '.join(p.elements)}"
                )
        set_of = self._set_index(system_idx, n_systems).cpu()
        if p.require_all_pairs:
            z_cpu, s_cpu = z.cpu(), system_idx.cpu()
            for s in range(n_systems):
                els = torch.unique(z_cpu[s_cpu == s]).tolist()
                k = int(set_of[s])
                for i, za in enumerate(els):
                    for zb in els[i:]:
                        if not bool(self._has_pair[k, za, zb]):
                            name = self.parameter_sets[k].name
                            raise ValueError(
                                f"classical parameter set '{name}' has no published parameters "
                                f"for pair {pair_key(_symbol(za), _symbol(zb))} (system {s}); "
                                f"tabulated pairs: {', '.join(self.parameter_sets[k].pairs)}"
                            )

    def charges(self, state) -> torch.Tensor:
        """Per-atom charges (e); SHIK's oxygen charge from neutrality of each system."""
        z = state.atomic_numbers.long()
        sys_idx = _system_idx(state)
        self._check_elements(z, sys_idx, state.n_systems)
        return self._charges(z, sys_idx, state.n_systems)

    def _charges(self, z: torch.Tensor, sys_idx: torch.Tensor, n_systems: int) -> torch.Tensor:
        q = self._q[self._set_index(sys_idx, n_systems)[sys_idx], z]
        el = self.parameter_set.neutralizing_element
        if el is None:
            return q
        is_x = z == _Z[el]
        pos_sum = torch.zeros(n_systems, dtype=q.dtype, device=q.device).index_add(
            0, sys_idx, torch.where(is_x, torch.zeros_like(q), q)
        )
        n_x = torch.zeros(n_systems, dtype=q.dtype, device=q.device).index_add(
            0, sys_idx, is_x.to(q.dtype)
        )
        n_other = torch.zeros_like(n_x).index_add(0, sys_idx, (~is_x).to(q.dtype))
        if bool(((n_other > 0) & (n_x == 0)).any()):
            raise ValueError(
                f"classical parameter set '{self.parameter_set.name}': a system has cations but "
                f"no {el}, so charge neutrality cannot set the charge of {el}"
            )
        q_x = -pos_sum / torch.clamp(n_x, min=1.0)
        return torch.where(is_x, q_x[sys_idx], q)

    # ------------------------------------------------------------------ forward
    def forward(self, state, **_kwargs) -> dict[str, torch.Tensor]:
        if state.dtype != self._dtype:
            raise TypeError(
                f"classical potential: SimState dtype {state.dtype} does not match model dtype "
                f"{self._dtype}"
            )
        with torch.no_grad():
            return self._forward(state)

    def _forward(self, state) -> dict[str, torch.Tensor]:
        pos = state.positions.detach()
        cell = state.row_vector_cell.detach()
        n_systems = state.n_systems
        sys_idx = _system_idx(state)
        pbc = state.pbc.to(torch.bool).reshape(-1, 3).expand(n_systems, 3)
        z = state.atomic_numbers.long()
        nl, dr, u = self._pair_vectors(pos, cell, pbc, z, sys_idx, n_systems)
        e_pair, f_pair, virial = self._kernel(dr, u, nl["flat"], nl["prm"], nl["qq"])
        n_atoms = pos.shape[0]
        j_side = None
        if self._compute_forces:  # sum over the j ends: beside the rest on a CPU thread
            j_sum = functools.partial(_accumulate, 3 * n_atoms, nl["j_flat"], f_pair)
            j_side = _side_pool().submit(j_sum) if _parallel_scatter(pos) else None
        energy = nl["sys_segments"].sum(e_pair)
        if self.coulomb == "dsf":
            a = self.alpha
            energy = energy - COULOMB_EV_A * (self._e_shift / 2.0 + a / math.sqrt(math.pi)) * nl[
                "q2_sys"
            ]
        out = {"energy": energy}
        if self._compute_forces:
            # each end's sum in a fixed order, then their difference: the same arithmetic
            # whether the j side runs on its own thread or not (deterministic for any threads)
            forces = nl["i_segments"].sum(f_pair.view(3, -1))
            forces -= (j_sum() if j_side is None else j_side.result()).view(3, n_atoms)
            out["forces"] = forces.t().contiguous()
        if self._compute_stress:
            xx, yy, zz, yz, xz, xy = nl["sys_segments"].sum(virial).unbind(0)
            stress = torch.stack(
                [
                    torch.stack([xx, xy, xz], dim=-1),
                    torch.stack([xy, yy, yz], dim=-1),
                    torch.stack([xz, yz, zz], dim=-1),
                ],
                dim=-2,
            )
            volume = torch.abs(torch.linalg.det(cell))
            out["stress"] = stress / volume[:, None, None]
        return out

    def _make_kernel(self):
        """Per-pair kernel: (stored pair vectors (3, P), displacements (3N), flat end indices
        (6P), pair parameters (5, P), q_i q_j (P)) -> (pair energies (P), dE/dr_j of every pair
        by component (3P, added on i and subtracted on j), virial terms (6, P) or None).

        All configuration is baked in as Python constants so ``torch.compile`` can fuse the
        whole kernel, gathers included, into one loop (``compile=True``)."""
        form = self.parameter_set.form
        rc, gamma_sr = self.cutoff, self.smoothing_width
        smooth_sr = self.truncation == "smooth" and gamma_sr > 0
        use_r24 = bool(self._use_r24)
        coulomb, rcc, a = self.coulomb, self.coulomb_cutoff, self.alpha
        e_shift, f_shift, k = self._e_shift, self._f_shift, COULOMB_EV_A
        two_a_sqrtpi = 2.0 * a / math.sqrt(math.pi)
        want_forces, want_virial = self._compute_forces, self._compute_stress

        def kernel(dr, u, flat, prm, qq):
            ends = u.index_select(0, flat).view(2, 3, -1)
            d = dr + ends[1] - ends[0]
            dx, dy, dz = d.unbind(0)
            p0, p1, p2, p3, e_rc = prm.unbind(0)
            r = torch.sqrt(dx * dx + dy * dy + dz * dz)
            r = torch.where(r > 0, r, torch.ones_like(r))  # a valid state has no r = 0 pair
            inv_r = 1.0 / r
            if form == "pedone":
                x = torch.exp(-p1 * (r - p2))
                inv_r12 = inv_r**12
                e = p0 * ((1.0 - x) ** 2 - 1.0) + p3 * inv_r12 - e_rc
                de = 2.0 * p0 * p1 * (1.0 - x) * x - 12.0 * p3 * inv_r12 * inv_r
            else:
                ex = p0 * torch.exp(-p1 * r)
                inv_r2 = inv_r * inv_r
                c6 = p2 * (inv_r2 * inv_r2 * inv_r2)
                e = ex - c6 - e_rc
                de = (6.0 * c6) * inv_r - p1 * ex
                if use_r24:
                    d24 = p3 * (inv_r2 * inv_r2 * inv_r2) ** 4
                    e = e + d24
                    de = de - (24.0 * d24) * inv_r
            inside = r < rc
            if smooth_sr:
                g, dg = _smoothing(r, rc, gamma_sr, inside)
                de = de * g + e * dg
                e = e * g
            m = inside.to(r.dtype)
            e, de = e * m, de * m
            if coulomb != "none":
                kqq = (k * qq) * (r < rcc).to(r.dtype)
                if coulomb == "dsf":
                    erfc_ar = torch.special.erfc(a * r)
                    ec = erfc_ar * inv_r - (e_shift + f_shift * r)
                    dec = (erfc_ar * inv_r + two_a_sqrtpi * torch.exp(-(a * a) * r * r)) * inv_r
                    dec = -(dec + f_shift)
                else:  # wolf as in SHIK (alpha = 0, smoothed)
                    ec = inv_r - 1.0 / rcc + (r - rcc) / (rcc * rcc)
                    dec = 1.0 / (rcc * rcc) - inv_r * inv_r
                    if gamma_sr > 0:
                        g, dg = _smoothing(r, rcc, gamma_sr, r < rcc)
                        dec = dec * g + ec * dg
                        ec = ec * g
                e = e + kqq * ec
                de = de + kqq * dec
            f = d * (de * inv_r)
            fx, fy, fz = f.unbind(0)
            virial = (
                torch.stack([fx * dx, fy * dy, fz * dz, fy * dz, fx * dz, fx * dy])
                if want_virial
                else None
            )
            return e, f.reshape(-1) if want_forces else None, virial

        return kernel


class PerSystemPairModel(ClassicalPairModel):
    """A ``ClassicalPairModel`` whose systems each have their own parameter set.

    ``parameter_sets[k]`` (names or ``ParameterSet``) acts on system k of every state passed in,
    so the state must hold exactly ``len(parameter_sets)`` systems. The sets must share form,
    elements and charge rules; the Coulomb treatment, cutoffs and truncation are those of the
    first set unless overridden, and every set must agree with them. Keyword arguments are those
    of ``ClassicalPairModel``. ``set_parameters`` swaps the sets without rebuilding the model (a
    compiled kernel is kept).
    """

    def __init__(self, parameter_sets: Sequence[str | ParameterSet], **kwargs) -> None:
        sets = [_resolve(s) for s in parameter_sets]
        if not sets:
            raise ValueError("PerSystemPairModel: expected at least one parameter set")
        super().__init__(sets[0], **kwargs)
        self._per_system = True
        self._install(self._check_sets(sets))

    def set_parameters(self, parameter_sets: Sequence[str | ParameterSet]) -> None:
        """Use ``parameter_sets`` (one per system) from the next call on."""
        sets = self._check_sets(parameter_sets)
        base = self.parameter_set
        if sets[0].form != base.form or sets[0].elements != base.elements:
            raise ValueError(
                f"PerSystemPairModel.set_parameters: sets of form {sets[0].form!r} with elements "
                f"{sets[0].elements}; the model was built for {self.parameter_set.form!r} with "
                f"{self.parameter_set.elements}"
            )
        self._install(sets)


def buckingham_model(parameters, **options) -> ClassicalPairModel:
    """The model of a parameter file (``potential: buckingham`` with
    ``potential_options: {parameters: <file>}``); other options as for ``ClassicalPairModel``
    (the file's Coulomb settings are the defaults they override)."""
    return ClassicalPairModel(load_parameter_file(parameters), **options)


def load_buckingham(name: str = "buckingham", device: str = "cpu", dtype=None,
                    parameters=None, **options) -> ClassicalPairModel:
    """Registry loader of ``buckingham``: ``loader(name, device=, dtype=, **options)``."""
    if parameters is None:
        raise ValueError("potential buckingham: potential_options.parameters is missing; expected "
                         "the path of a parameter file (e.g. a forcefield_fit's fitted.yaml)")
    return buckingham_model(parameters, device=torch.device(device),
                            dtype=dtype or torch.float64, **options)


_SIDE_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _side_pool() -> ThreadPoolExecutor:
    """One worker thread for the j-end force sums (a 1-D scatter on a CPU runs on one thread); a
    forked child makes its own (it inherits no running thread)."""
    global _SIDE_POOL
    if _SIDE_POOL is None or _SIDE_POOL[0] != os.getpid():
        _SIDE_POOL = (os.getpid(),
                      ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitriflow-forces"))
    return _SIDE_POOL[1]


def _parallel_scatter(pos: torch.Tensor) -> bool:
    return pos.device.type == "cpu" and torch.get_num_threads() > 1


def _accumulate(n: int, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` summed into ``n`` bins by ``index`` (int64), in index order: a 1-D
    ``scatter_add_`` runs serially on a CPU, ~2x faster than ``index_add_``."""
    return torch.zeros(n, dtype=values.dtype, device=values.device).scatter_add_(0, index, values)


def _smoothing(r, rc, gamma, inside):
    """SHIK smoothing g = exp(-gamma^2/(r - rc)^2) and dg/dr (zero at and beyond rc)."""
    x = torch.where(inside, r - rc, -torch.ones_like(r))
    g = torch.exp(-(gamma * gamma) / (x * x))
    dg = g * 2.0 * gamma * gamma / (x * x * x)
    zero = torch.zeros_like(r)
    return torch.where(inside, g, zero), torch.where(inside, dg, zero)


def _system_idx(state) -> torch.Tensor:
    if state.system_idx is not None:
        return state.system_idx.long()
    return torch.zeros(state.positions.shape[0], dtype=torch.long, device=state.positions.device)
