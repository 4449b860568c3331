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

Speed: a Verlet (skin) half neighbour list from vesin (CPU or CUDA) is rebuilt only when an atom
has moved more than skin/2 since the last build (periodic jumps of wrapped positions are
recognised), or when the atoms or their order change. Under a changing cell (NPT) the stored
pair vectors are carried along with the cell (affine map F = h_ref^-1 h) and the list is kept
while no pair outside it can have come within the cutoff: sigma_min(F) (rc + skin) - 2 max|u| > rc,
u being each atom's displacement relative to the affinely mapped build positions.
"""

from __future__ import annotations

import math

import torch
from torch_sim.models.interface import ModelInterface

from vitriflow.potentials.classical_params import (
    COULOMB_EV_A,
    PARAMETER_SETS,
    ParameterSet,
    pair_key,
)

__all__ = ["PARAMETER_SETS", "ClassicalPairModel", "ParameterSet"]

_SYMBOLS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd "
    "Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi"
).split()
_Z = {s: z for z, s in enumerate(_SYMBOLS)}
_COULOMB = ("dsf", "wolf", "none")
_TRUNCATION = ("none", "shift", "smooth")


def _symbol(z: int) -> str:
    return _SYMBOLS[z] if 0 < z < len(_SYMBOLS) else f"Z={z}"


class ClassicalPairModel(ModelInterface):
    """Batched pair potential + Coulomb for oxide glasses (energy, forces, stress).

    Args:
        parameter_set: name in ``PARAMETER_SETS`` (``bks``, ``chik``, ``shik``, ``teter``,
            ``pedone``) or a ``ParameterSet``.
        coulomb, alpha, cutoff, coulomb_cutoff, truncation, smoothing_width: override the set's
            defaults (see module docstring). ``alpha`` is the DSF damping in 1/Å.
        walls: add the set's vitriflow r^-24 walls (see ``classical_params``).
        skin: Verlet buffer in Å (0 rebuilds the neighbour list at every call).
        compile: fuse the per-pair kernel with ``torch.compile`` (about 4x faster on CPU; the
            first call compiles for ~1 min, later processes reuse Inductor's disk cache).
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
        if isinstance(parameter_set, str):
            if parameter_set not in PARAMETER_SETS:
                raise ValueError(
                    f"classical potential: unknown parameter set {parameter_set!r}; expected one "
                    f"of {', '.join(sorted(PARAMETER_SETS))}"
                )
            parameter_set = PARAMETER_SETS[parameter_set]
        p = parameter_set
        self.parameter_set = p
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
                f"classical potential {p.name}: truncation={self.truncation!r}; expected {_TRUNCATION}"
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
        self.max_cutoff = max(self.cutoff, self.coulomb_cutoff if self.coulomb != "none" else 0.0)
        self._build_tables()
        kernel = self._make_kernel()
        self._kernel = torch.compile(kernel, dynamic=True) if compile else kernel
        self._nl: dict | None = None
        self._nl_on_cpu = False
        self.n_neighbor_builds = 0

    # ------------------------------------------------------------------ tables
    def _build_tables(self) -> None:
        """Dense (Zmax+1)^2 tables of pair parameters, indexed by atomic numbers."""
        p = self.parameter_set
        self._known_z = sorted(_Z[s] for s in p.charges)
        nz = max(self._known_z) + 1
        self._nz = nz
        params = torch.zeros(nz, nz, 4, dtype=torch.float64)
        has_pair = torch.zeros(nz, nz, dtype=torch.bool)
        for key, vals in p.pairs.items():
            a, b = key.split("-")
            za, zb = _Z[a], _Z[b]
            v = list(vals)
            if p.form == "buckingham" and self.walls:
                v[3] += p.walls.get(key, 0.0)
            params[za, zb] = params[zb, za] = torch.tensor(v, dtype=torch.float64)
            has_pair[za, zb] = has_pair[zb, za] = True
        # energy of each pair at the short-range cutoff, for "shift" / "smooth"
        rc = torch.tensor(self.cutoff, dtype=torch.float64)
        e_rc = self._short_range(rc.expand(nz * nz), params.reshape(-1, 4))[0].reshape(nz, nz)
        if self.truncation == "none":
            e_rc = torch.zeros_like(e_rc)
        self._params_cpu = params
        self._e_rc_cpu = torch.where(has_pair, e_rc, torch.zeros_like(e_rc))
        self._has_pair = has_pair
        q = torch.zeros(nz, dtype=torch.float64)
        for s, val in p.charges.items():
            q[_Z[s]] = val
        self._q_cpu = q
        known = torch.zeros(nz, dtype=torch.bool)
        known[self._known_z] = True
        self._known_cpu = known
        dd = dict(device=self._device, dtype=self._dtype)
        self._params = params.to(**dd)
        self._e_rc = self._e_rc_cpu.to(**dd)
        self._q = q.to(**dd)
        # DSF constants (LAMMPS pair_coul_dsf / pair_born_coul_dsf init_style)
        a, rcc = self.alpha, self.coulomb_cutoff
        erfc_c = math.erfc(a * rcc)
        self._f_shift = -(
            erfc_c / rcc**2 + 2.0 / math.sqrt(math.pi) * a * math.exp(-((a * rcc) ** 2)) / rcc
        )
        self._e_shift = erfc_c / rcc - self._f_shift * rcc

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
    def _check_elements(self, z: torch.Tensor, system_idx: torch.Tensor, n_systems: int) -> None:
        p = self.parameter_set
        present = torch.unique(z.cpu()).tolist()
        for zz in present:
            if zz >= self._nz or zz < 0 or not bool(self._known_cpu[zz]):
                raise ValueError(
                    f"classical parameter set '{p.name}' has no parameters for element "
                    f"{_symbol(int(zz))}; it covers {', '.join(p.elements)}"
                )
        if p.require_all_pairs:
            z_cpu, s_cpu = z.cpu(), system_idx.cpu()
            for s in range(n_systems):
                els = torch.unique(z_cpu[s_cpu == s]).tolist()
                for i, za in enumerate(els):
                    for zb in els[i:]:
                        if not bool(self._has_pair[za, zb]):
                            raise ValueError(
                                f"classical parameter set '{p.name}' has no published parameters "
                                f"for pair {pair_key(_symbol(za), _symbol(zb))} (system {s}); "
                                f"tabulated pairs: {', '.join(p.pairs)}"
                            )

    def charges(self, state) -> torch.Tensor:
        """Per-atom charges (e); SHIK's oxygen charge from neutrality of each system."""
        z = state.atomic_numbers.long()
        sys_idx = _system_idx(state)
        self._check_elements(z, sys_idx, state.n_systems)
        return self._charges(z, sys_idx, state.n_systems)

    def _charges(self, z: torch.Tensor, sys_idx: torch.Tensor, n_systems: int) -> torch.Tensor:
        q = self._q[z]
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

    # ------------------------------------------------------------------ neighbours
    def _build_neighbors(self, pos, cell, pbc, z, sys_idx, n_systems) -> dict:
        """Half list within max cutoff + skin (vesin), stored as contiguous per-pair arrays."""
        from vesin import NeighborList

        self._check_elements(z, sys_idx, n_systems)
        counts = torch.bincount(sys_idx, minlength=n_systems).tolist()  # systems are contiguous
        nl = NeighborList(cutoff=self.max_cutoff + self.skin, full_list=False)
        dev = pos.device
        ii, jj, dd, pp = [], [], [], []
        pos64 = pos.detach().to(torch.float64)
        cell64 = cell.detach().to(torch.float64)
        n0 = 0
        for s, n in enumerate(counts):
            if n == 0:
                continue
            args = (pos64[n0 : n0 + n], cell64[s], pbc[s].detach().to(torch.bool))
            if self._nl_on_cpu:
                args = tuple(a.cpu() for a in args)
            try:
                i, j, vec = nl.compute(*(a.contiguous() for a in args), quantities="ijD")
            except RuntimeError:
                if self._nl_on_cpu or args[0].device.type == "cpu":
                    raise
                self._nl_on_cpu = True  # this vesin build has no GPU support: list on the CPU
                i, j, vec = nl.compute(*(a.cpu().contiguous() for a in args), quantities="ijD")
            ii.append(i.to(device=dev, dtype=torch.long) + n0)
            jj.append(j.to(device=dev, dtype=torch.long) + n0)
            dd.append(vec.to(device=dev, dtype=pos.dtype))
            pp.append(torch.full((len(i),), s, dtype=torch.long, device=dev))
            n0 += n
        if ii:
            i, j, psys = torch.cat(ii), torch.cat(jj), torch.cat(pp)
            dr_ref = torch.cat(dd).t().contiguous()  # (3, P): one contiguous row per component
        else:
            i = j = psys = torch.zeros(0, dtype=torch.long, device=dev)
            dr_ref = torch.zeros(3, 0, dtype=pos.dtype, device=dev)
        q = self._charges(z, sys_idx, n_systems)
        zi, zj = z[i], z[j]
        prm = self._params[zi, zj].t().contiguous()  # (4, P)
        self.n_neighbor_builds += 1
        return {
            "i": i,
            "j": j,
            "psys": psys,
            "dr_ref": dr_ref,
            "pos_ref": pos.detach().clone(),
            "cell": cell.detach().clone(),
            "inv_cell": torch.linalg.inv(cell.detach()),
            "z": z.clone(),
            "sys_idx": sys_idx.clone(),
            "pbc": pbc.detach().clone(),
            "prm": prm,
            "has_r24": bool((prm[3] != 0).any()),
            "e_rc": self._e_rc[zi, zj],
            "qq": q[i] * q[j],
            "q2_sys": torch.zeros(n_systems, dtype=q.dtype, device=q.device).index_add(
                0, sys_idx, q * q
            ),
        }

    def _pair_vectors(self, pos, cell, pbc, z, sys_idx, n_systems) -> tuple[dict, torch.Tensor]:
        """Neighbour data and current pair vectors (3, P), rebuilding the list only when needed."""
        nl = self._nl
        if (
            nl is not None
            and self.skin > 0
            and nl["z"].shape == z.shape
            and nl["cell"].shape == cell.shape
            and torch.equal(nl["z"], z)
            and torch.equal(nl["sys_idx"], sys_idx)
            and torch.equal(nl["pbc"], pbc)
        ):
            dr = self._reused_pair_vectors(nl, pos, cell, sys_idx)
            if dr is not None:
                return nl, dr
        nl = self._build_neighbors(pos, cell, pbc, z, sys_idx, n_systems)
        self._nl = nl
        return nl, nl["dr_ref"]

    def _reused_pair_vectors(self, nl, pos, cell, sys_idx) -> torch.Tensor | None:
        """Pair vectors (3, P) of the stored list, or None when it may miss a pair in the cutoff.

        u is each atom's displacement since the build relative to the cell's affine map
        F = h_ref^-1 h (row vectors, so a stored pair vector becomes dr_ref F), periodic jumps of
        wrapped positions removed. No pair outside the list can have come within rc while
        sigma_min(F) (rc + skin) - 2 max|u| > rc; for a fixed cell that is max|u| < skin/2.
        """
        strained = not torch.equal(nl["cell"], cell)
        inv_ref = nl["inv_cell"][sys_idx]
        if strained:
            F = nl["inv_cell"] @ cell
            ds = torch.einsum("ak,akl->al", pos, torch.linalg.inv(cell)[sys_idx]) - torch.einsum(
                "ak,akl->al", nl["pos_ref"], inv_ref)
        else:
            ds = torch.einsum("ak,akl->al", pos - nl["pos_ref"], inv_ref)
        ds = ds - torch.where(nl["pbc"][sys_idx], torch.round(ds), torch.zeros_like(ds))
        u = torch.einsum("ak,akl->al", ds, cell[sys_idx])
        shrink = float(torch.linalg.svdvals(F).min()) if strained else 1.0
        max_u = float(torch.linalg.vector_norm(u, dim=1).max())
        if shrink * (self.max_cutoff + self.skin) - 2.0 * max_u <= self.max_cutoff:
            return None
        dr_ref = torch.einsum("kp,pkc->cp", nl["dr_ref"], F[nl["psys"]]) if strained else nl["dr_ref"]
        u = u.t().contiguous()
        i, j = nl["i"], nl["j"]
        return torch.stack([dr_ref[c] + u[c].index_select(0, j) - u[c].index_select(0, i) for c in range(3)])

    def reset_cache(self) -> None:
        """Forget the cached neighbour list (the MD driver calls this at every segment start so
        that a resumed run does the same arithmetic as an uninterrupted one)."""
        self._nl = None

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
        nl, dr = self._pair_vectors(pos, cell, pbc, z, sys_idx, n_systems)
        prm = nl["prm"]
        e_pair, fx, fy, fz = self._kernel(
            dr[0], dr[1], dr[2], prm[0], prm[1], prm[2], prm[3], nl["e_rc"], nl["qq"]
        )
        dtype = pos.dtype
        energy_self = None
        if self.coulomb == "dsf":
            a = self.alpha
            energy_self = (
                -COULOMB_EV_A * (self._e_shift / 2.0 + a / math.sqrt(math.pi)) * nl["q2_sys"]
            )
        psys = nl["psys"]
        if n_systems == 1:
            energy = e_pair.sum().reshape(1)
        else:
            energy = torch.zeros(n_systems, dtype=dtype, device=pos.device).index_add_(
                0, psys, e_pair
            )
        if energy_self is not None:
            energy = energy + energy_self
        out = {"energy": energy}
        f = (fx, fy, fz)  # dE/d(r_j) of each pair; minus that on j, plus on i
        if self._compute_forces:
            forces_t = torch.zeros(3, pos.shape[0], dtype=dtype, device=pos.device)
            for c in range(3):
                forces_t[c].index_add_(0, nl["i"], f[c])
                forces_t[c].index_add_(0, nl["j"], f[c], alpha=-1.0)
            out["forces"] = forces_t.t().contiguous()
        if self._compute_stress:
            comps = []
            for a_, b_ in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)):
                v = f[a_] * dr[b_]
                if n_systems == 1:
                    comps.append(v.sum().reshape(1))
                else:
                    comps.append(
                        torch.zeros(n_systems, dtype=dtype, device=pos.device).index_add_(
                            0, psys, v
                        )
                    )
            xx, yy, zz, yz, xz, xy = comps
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
        """Elementwise per-pair kernel: (dx, dy, dz, A, B, C, D, e_rc, qq) -> (E, dE/dr_j).

        All configuration is baked in as Python constants so ``torch.compile`` can fuse the
        whole kernel into one loop (``compile=True``)."""
        form = self.parameter_set.form
        rc, gamma_sr = self.cutoff, self.smoothing_width
        smooth_sr = self.truncation == "smooth" and gamma_sr > 0
        use_r24 = form == "buckingham" and bool((self._params_cpu[..., 3] != 0).any())
        coulomb, rcc, a = self.coulomb, self.coulomb_cutoff, self.alpha
        e_shift, f_shift, k = self._e_shift, self._f_shift, COULOMB_EV_A
        two_a_sqrtpi = 2.0 * a / math.sqrt(math.pi)

        def kernel(dx, dy, dz, p0, p1, p2, p3, e_rc, qq):
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
            w = de * inv_r
            return e, w * dx, w * dy, w * dz

        return kernel


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
