"""ClassicalPairModel: agreement with an independent direct pair sum, derivatives, batching, SHIK
charges, neighbour-list reuse, errors, and NVE energy conservation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch_sim as ts
from ase import Atoms
from ase.spacegroup import crystal
from scipy.special import erfc

from vitriflow.potentials.classical import ClassicalPairModel
from vitriflow.potentials.classical_params import COULOMB_EV_A, PARAMETER_SETS

torch.set_num_threads(1)

MASS = {"Si": 28.0855, "O": 15.999, "Na": 22.98977, "Ca": 40.078, "Al": 26.98154,
        "Ba": 137.327, "Ti": 47.867, "Zn": 65.38}
MIN_DIST = {"O-Si": 1.55, "O-O": 2.3, "Si-Si": 2.8}  # pairs not listed: 2.0 Å


def random_cell(symbols: list[str], density: float = 2.1, seed: int = 0) -> Atoms:
    """Random periodic cell with species-aware minimum distances (no overlapping ions)."""
    rng = np.random.default_rng(seed)
    mass = sum(MASS[s] for s in symbols)
    length = (mass / density / 0.602214076) ** (1 / 3)
    pos: list[np.ndarray] = []
    for s in symbols:
        for _ in range(10000):
            p = rng.random(3) * length
            ok = True
            for q, t in zip(pos, symbols, strict=False):
                d = p - q
                d -= length * np.round(d / length)
                if np.linalg.norm(d) < MIN_DIST.get("-".join(sorted((s, t))), 2.0):
                    ok = False
                    break
            if ok:
                pos.append(p)
                break
        else:
            raise RuntimeError("could not place atom")
    # slightly triclinic to exercise the general cell path
    cell = np.array([[length, 0, 0], [0.3, length, 0], [-0.2, 0.4, length]])
    atoms = Atoms(symbols, scaled_positions=np.array(pos) / length, cell=cell, pbc=True)
    return atoms


def sio2(n_si: int = 24, seed: int = 0) -> Atoms:
    return random_cell(["Si"] * n_si + ["O"] * (2 * n_si), seed=seed)


def na_silicate(n_na2o: int = 4, n_sio2: int = 12, seed: int = 1) -> Atoms:
    return random_cell(
        ["Na"] * (2 * n_na2o) + ["Si"] * n_sio2 + ["O"] * (n_na2o + 2 * n_sio2), seed=seed
    )


def state_of(atoms_list, dtype=torch.float64):
    return ts.io.atoms_to_state(list(atoms_list), device=torch.device("cpu"), dtype=dtype)


# --------------------------------------------------------------------------- reference
def reference_pair_function(model: ClassicalPairModel, atoms: Atoms):
    """phi(r, el_a, el_b) and the self energy, from the published formulas (numpy, scalar r)."""
    p = model.parameter_set
    k = COULOMB_EV_A
    syms = atoms.get_chemical_symbols()
    q = {s: p.charges[s] for s in set(syms)}
    if p.neutralizing_element:
        x = p.neutralizing_element
        q[x] = -sum(p.charges[s] for s in syms if s != x) / syms.count(x)
    rc, rcc, a, g = model.cutoff, model.coulomb_cutoff, model.alpha, model.smoothing_width

    def sr(r, key):
        if key not in p.pairs:
            return np.zeros_like(r)
        v = p.pairs[key]
        if p.form == "pedone":
            d0, aa, r0, c12 = v
            return d0 * ((1 - np.exp(-aa * (r - r0))) ** 2 - 1) + c12 / r**12
        d = v[3] + (p.walls.get(key, 0.0) if model.walls else 0.0)
        return v[0] * np.exp(-v[1] * r) - v[2] / r**6 + d / r**24

    def phi(r, sa, sb):
        key = "-".join(sorted((sa, sb)))
        e = np.zeros_like(r)
        inside = r < rc
        val = sr(r, key)
        if model.truncation in ("shift", "smooth"):
            val = val - sr(np.array([rc]), key)
        if model.truncation == "smooth":
            with np.errstate(divide="ignore", over="ignore"):
                val = val * np.exp(-(g**2) / (r - rc) ** 2)
        e += np.where(inside, val, 0.0)
        qq = q[sa] * q[sb]
        inside_c = r < rcc
        if model.coulomb == "dsf":
            # Fennell & Gezelter (2006) eq. for the DSF pair potential
            slope = (
                erfc(a * rcc) / rcc**2
                + 2 * a / math.sqrt(math.pi) * math.exp(-((a * rcc) ** 2)) / rcc
            )
            v = k * qq * (erfc(a * r) / r - erfc(a * rcc) / rcc + slope * (r - rcc))
            e += np.where(inside_c, v, 0.0)
        elif model.coulomb == "wolf":
            v = k * qq * (1 / r - 1 / rcc + (r - rcc) / rcc**2)
            with np.errstate(divide="ignore", over="ignore"):
                v = v * np.exp(-(g**2) / (r - rcc) ** 2)
            e += np.where(inside_c, v, 0.0)
        return e

    e_self = 0.0
    if model.coulomb == "dsf":
        slope = (
            erfc(a * rcc) / rcc**2 + 2 * a / math.sqrt(math.pi) * math.exp(-((a * rcc) ** 2)) / rcc
        )
        # LAMMPS coul/dsf: -(e_shift/2 + alpha/sqrt(pi)) q^2 with e_shift = erfc(a Rc)/Rc + slope Rc
        e_shift = erfc(a * rcc) / rcc + slope * rcc
        e_self = -k * (e_shift / 2 + a / math.sqrt(math.pi)) * sum(q[s] ** 2 for s in syms)
    return phi, e_self


def direct_sum(model: ClassicalPairModel, atoms: Atoms):
    """Energy and forces by an explicit loop over periodic images (no neighbour list)."""
    phi, e_self = reference_pair_function(model, atoms)
    pos = atoms.get_positions()
    cell = np.array(atoms.get_cell())
    syms = atoms.get_chemical_symbols()
    rmax = max(model.cutoff, model.coulomb_cutoff)
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1
    )
    nmax = np.ceil(rmax / heights).astype(int) + 1
    images = np.array(
        [
            (i, j, k)
            for i in range(-nmax[0], nmax[0] + 1)
            for j in range(-nmax[1], nmax[1] + 1)
            for k in range(-nmax[2], nmax[2] + 1)
        ]
    )
    shifts = images @ cell
    energy, forces, h = e_self, np.zeros_like(pos), 1e-5
    for i in range(len(atoms)):
        for sb in set(syms):
            js = [j for j in range(len(atoms)) if syms[j] == sb]
            vec = pos[js][None, :, :] + shifts[:, None, :] - pos[i]  # r_j + nL - r_i
            r = np.linalg.norm(vec, axis=2)
            keep = r > 1e-8  # drop the atom itself (n = 0, j = i)
            rr = r[keep]
            energy += 0.5 * phi(rr, syms[i], sb).sum()
            dphi = (phi(rr + h, syms[i], sb) - phi(rr - h, syms[i], sb)) / (2 * h)
            forces[i] += (dphi[:, None] * vec[keep] / rr[:, None]).sum(axis=0)
    return energy, forces


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", ["bks", "chik", "shik", "teter", "pedone"])
def test_matches_direct_pair_sum(name):
    atoms = sio2(24, seed=3)
    model = ClassicalPairModel(name)
    out = model(state_of([atoms]))
    e_ref, f_ref = direct_sum(model, atoms)
    assert out["energy"].item() == pytest.approx(e_ref, rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(out["forces"].numpy(), f_ref, atol=2e-6)
    assert np.abs(f_ref).max() > 0.5  # non-trivial configuration


@pytest.mark.parametrize(
    "name,options", [("shik", {}), ("teter", {"coulomb": "wolf", "truncation": "none"})]
)
def test_direct_sum_multicomponent(name, options):
    atoms = na_silicate(seed=5)
    model = ClassicalPairModel(name, **options)
    out = model(state_of([atoms]))
    e_ref, f_ref = direct_sum(model, atoms)
    assert out["energy"].item() == pytest.approx(e_ref, rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(out["forces"].numpy(), f_ref, atol=2e-6)


def test_pedone_dopants_match_direct_pair_sum():
    """Ba, Ti, Zn (Pedone 2006 table) enter with their charges and cation-O terms only."""
    # BaO TiO2 2ZnO 8SiO2
    atoms = random_cell(["Ba", "Ti", "Zn", "Zn"] + ["Si"] * 8 + ["O"] * 21, seed=4)
    model = ClassicalPairModel("pedone")
    out = model(state_of([atoms]))
    e_ref, f_ref = direct_sum(model, atoms)
    assert out["energy"].item() == pytest.approx(e_ref, rel=1e-10, abs=1e-8)
    np.testing.assert_allclose(out["forces"].numpy(), f_ref, atol=2e-6)
    charges = model.parameter_set.charges
    assert sum(charges[s] for s in atoms.get_chemical_symbols()) == pytest.approx(0)


@pytest.mark.parametrize("name", ["bks", "shik"])
def test_forces_and_stress_are_energy_derivatives(name):
    atoms = sio2(16, seed=7) if name == "bks" else na_silicate(seed=2)
    model = ClassicalPairModel(name, skin=0.0)
    out = model(state_of([atoms]))
    h = 1e-5
    for i in (0, 5, len(atoms) - 1):
        for c in range(3):
            ep, em = atoms.copy(), atoms.copy()
            ep.positions[i, c] += h
            em.positions[i, c] -= h
            fd = -(model(state_of([ep]))["energy"] - model(state_of([em]))["energy"]).item() / (
                2 * h
            )
            assert out["forces"][i, c].item() == pytest.approx(fd, abs=1e-5)
    # stress = (1/V) dE/d(strain), row-vector convention: x' = x (1 + eps)
    vol = atoms.get_volume()
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]:
        energies = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * h
            d = np.eye(3) + eps
            s = atoms.copy()
            s.set_cell(np.array(atoms.get_cell()) @ d, scale_atoms=False)
            s.positions = atoms.positions @ d
            energies.append(model(state_of([s]))["energy"].item())
        deriv = (energies[0] - energies[1]) / (2 * h) / (1 if a == b else 2)
        assert out["stress"][0, a, b].item() == pytest.approx(deriv / vol, abs=2e-6)


def test_batched_equals_one_at_a_time():
    systems = [sio2(12, seed=1), na_silicate(seed=4), sio2(20, seed=2), na_silicate(2, 10, seed=6)]
    model = ClassicalPairModel("teter")
    batched = model(state_of(systems))
    offset = 0
    for k, atoms in enumerate(systems):
        single = ClassicalPairModel("teter")(state_of([atoms]))
        n = len(atoms)
        assert batched["energy"][k].item() == pytest.approx(single["energy"].item(), rel=1e-12)
        torch.testing.assert_close(batched["forces"][offset : offset + n], single["forces"])
        torch.testing.assert_close(batched["stress"][k], single["stress"][0])
        offset += n


def test_forces_are_bitwise_identical_for_any_thread_count():
    # on several threads the j-end force sums run on a second thread; the arithmetic is the same
    systems = [sio2(12, seed=1), na_silicate(seed=4)]
    runs = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        try:
            model = ClassicalPairModel("teter", dtype=torch.float32)
            out = model(state_of(systems, torch.float32))
        finally:
            torch.set_num_threads(1)
        runs.append(out)
    for out in runs[1:]:
        assert torch.equal(out["forces"], runs[0]["forces"])
        assert torch.equal(out["energy"], runs[0]["energy"])
    assert runs[0]["forces"].abs().max() > 0.1


def test_shik_oxygen_charge_from_neutrality():
    # 20 Na2O - 80 SiO2 and 33 Na2O - 67 SiO2 batched: each system neutral with its own q_O
    systems = [na_silicate(4, 16, seed=1), na_silicate(6, 12, seed=2), sio2(8)]
    state = state_of(systems)
    model = ClassicalPairModel("shik")
    q = model.charges(state)
    sys_idx = state.system_idx
    for k, atoms in enumerate(systems):
        qk = q[sys_idx == k]
        assert abs(qk.sum().item()) < 1e-12
        syms = atoms.get_chemical_symbols()
        n_na, n_si, n_o = syms.count("Na"), syms.count("Si"), syms.count("O")
        q_o = qk[[s == "O" for s in syms]]
        assert torch.allclose(q_o, q_o[0].expand_as(q_o))
        assert q_o[0].item() == pytest.approx(-(0.6018 * n_na + 1.7755 * n_si) / n_o, rel=1e-12)
    # 0.2 Na2O-0.8 SiO2: the authors' LAMMPS input sets q_O = -3.501961788 in units of
    # sqrt(14.4 eV Å), i.e. -0.92285 e
    assert q[(sys_idx == 0) & (state.atomic_numbers == 8)][0].item() == pytest.approx(
        -3.501961788 / math.sqrt(14.4), abs=2e-5
    )
    assert q[(sys_idx == 2) & (state.atomic_numbers == 8)][0].item() == pytest.approx(-0.88775)


def test_unknown_element_and_missing_pair_errors():
    with pytest.raises(ValueError, match=r"'bks' has no parameters for element Na"):
        ClassicalPairModel("bks")(state_of([na_silicate()]))
    al_si = random_cell(["Al"] * 2 + ["Si"] * 4 + ["O"] * 11, seed=3)
    with pytest.raises(ValueError, match=r"'shik'.*pair Al-Si"):
        ClassicalPairModel("shik")(state_of([al_si]))
    with pytest.raises(ValueError, match="unknown parameter set 'foo'"):
        ClassicalPairModel("foo")
    with pytest.raises(ValueError, match="coulomb='ewald'"):
        ClassicalPairModel("bks", coulomb="ewald")


def _reuse_check(move, n_moves=3, seed=0):
    """Apply ``move(atoms, rng)`` n times to a cell; after each (wrapped: periodic jumps must not
    break a reused list) a skin-1 model must agree with one that rebuilds at every call."""
    fresh = ClassicalPairModel("shik", skin=0.0)
    cached = ClassicalPairModel("shik", skin=1.0)
    atoms = na_silicate(seed=8)
    cached(state_of([atoms]))
    rng = np.random.default_rng(seed)
    for _ in range(n_moves):
        move(atoms, rng)
        wrapped = atoms.copy()
        wrapped.wrap()
        a, b = fresh(state_of([wrapped])), cached(state_of([wrapped]))
        assert a["energy"].item() == pytest.approx(b["energy"].item(), rel=1e-12)
        torch.testing.assert_close(a["forces"], b["forces"])
        torch.testing.assert_close(a["stress"], b["stress"])
    return atoms, fresh, cached


def test_neighbor_list_reuse_across_moves_and_wrapping():
    def jiggle(atoms, rng):
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)

    moved, _, cached = _reuse_check(jiggle)
    assert cached.n_neighbor_builds == 1
    far = moved.copy()
    far.positions[:2] += 0.8  # two atoms 1.4 Å each: more than the skin in all, must rebuild
    cached(state_of([far]))
    assert cached.n_neighbor_builds == 2


def test_neighbor_list_follows_a_changing_cell():
    """NPT: the list survives small cell changes (pair vectors carried by the affine map) with
    the same energy, forces and stress as a rebuild; a large compression forces a rebuild."""

    def strain(atoms, rng):  # 0.5 % isotropic + a little shear, atoms carried along, + noise
        F = np.eye(3) * 1.005 + rng.normal(scale=0.002, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ F, scale_atoms=True)
        atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)

    strained, fresh, cached = _reuse_check(strain, seed=1)
    assert cached.n_neighbor_builds == 1
    # pairs from beyond rc + skin come in
    strained.set_cell(strained.cell.array * 0.9, scale_atoms=True)
    a, b = fresh(state_of([strained])), cached(state_of([strained]))
    assert cached.n_neighbor_builds == 2
    assert a["energy"].item() == pytest.approx(b["energy"].item(), rel=1e-12)


def _canonical_pairs(i, j, vectors):
    """Sorted (i, j, vector) of a half list with each pair written one way (i <= j; a self
    image with its vector lexicographically positive), vectors rounded to 1e-6 Å."""
    rows = []
    for a, b, v in zip(i.tolist(), j.tolist(), vectors.t().tolist(), strict=True):
        v = [round(x, 6) + 0.0 for x in v]
        if a > b or (a == b and v < [0.0, 0.0, 0.0]):
            a, b, v = b, a, [-x + 0.0 for x in v]
        rows.append((a, b, *v))
    return sorted(rows)


@pytest.mark.parametrize("shape", ["cubic", "triclinic", "slab"])
def test_small_cell_search_finds_the_pairs_vesin_finds(shape):
    """The all-image search over small cells (compiled models) gives vesin's half list, sorted
    by i end, from unwrapped positions in any cell shape; it stands aside for large cells."""
    from vitriflow.potentials.pair_lists import _small_cell_pairs, _small_cell_shifts

    rng = np.random.default_rng(5)
    n_sys, n, reach = 3, 40, 11.0
    h = {"cubic": np.eye(3) * 9.0, "triclinic": [[9.0, 0, 0], [2.5, 8.5, 0], [1.0, -2.0, 10.0]],
         "slab": np.diag([8.0, 9.0, 30.0])}[shape]
    cell = torch.tensor(np.array([h] * n_sys, dtype=float))
    pbc = torch.tensor([[True, True, shape != "slab"]] * n_sys)
    frac = rng.uniform(-1.0, 2.0, size=(n_sys * n, 3))  # unwrapped: up to a cell outside
    if shape == "slab":
        frac[:, 2] = rng.uniform(0.3, 0.7, size=n_sys * n)
    pos = torch.tensor(frac @ np.asarray(h, dtype=float))
    shifts = _small_cell_shifts(cell, pbc, reach, n)
    assert shifts is not None and torch.equal(shifts[0], torch.zeros(3, dtype=shifts.dtype))
    i, j, psys, dr = _small_cell_pairs(pos, cell, pbc, shifts, reach, compiled=False)
    vi, vj, vsys, vdr = ClassicalPairModel("bks")._vesin_pairs(pos, cell, pbc, [n] * n_sys, reach)
    assert bool((i[1:] >= i[:-1]).all())
    assert torch.equal(psys, torch.div(i, n, rounding_mode="floor"))
    assert len(i) == len(vi) > 1000
    assert _canonical_pairs(i, j, dr) == _canonical_pairs(vi, vj, vdr)
    assert _small_cell_shifts(cell * 3.0, pbc, reach, n) is None


def test_segment_sums_with_empty_runs():
    """Segments.sum equals torch.segment_reduce, with empty runs first, inside and last."""
    from vitriflow.potentials.pair_lists import Segments

    lengths = torch.tensor([0, 3, 0, 0, 5, 1, 0, 2, 0])
    values = torch.randn(3, int(lengths.sum()), generator=torch.Generator().manual_seed(0))
    expected = torch.segment_reduce(values, "sum", lengths=lengths.expand(3, -1).contiguous(),
                                    axis=1)
    torch.testing.assert_close(Segments(lengths).sum(values), expected)
    full = torch.tensor([2, 1, 4])
    torch.testing.assert_close(Segments(full).sum(values[0, :7]),
                               torch.segment_reduce(values[0, :7], "sum", lengths=full))
    assert torch.equal(Segments(torch.zeros(4, dtype=torch.long)).sum(values[:, :0]),
                       torch.zeros(3, 4))


@pytest.mark.parametrize("name", ["bks", "chik", "teter"])
def test_walls_remove_the_buckingham_collapse(name):
    """Every wall makes short range + bare Coulomb free of a local maximum on 0.4-3.5 Å, and is
    negligible (< 1e-3 eV) at first-shell distances (cation-O 1.6 Å, O-O 2.3 Å, cation-cation
    2.8 Å)."""
    p = PARAMETER_SETS[name]
    r = np.linspace(0.4, 3.5, 31001)
    for key, d in p.walls.items():
        a, b = key.split("-")
        A, B, C, _ = p.pairs[key]
        v0 = A * np.exp(-B * r) - C / r**6 + COULOMB_EV_A * p.charges[a] * p.charges[b] / r
        dv = np.diff(v0 + d / r**24)
        assert not np.any((dv[:-1] > 0) & (dv[1:] <= 0)), key
        r_shell = 2.3 if key == "O-O" else (1.6 if "O" in (a, b) else 2.8)
        assert d / r_shell**24 < 1e-3, key


def test_nve_energy_conservation_cristobalite_300k():
    # ideal beta-cristobalite (Fd-3m), 2x2x2 = 192 atoms
    cryst = crystal(
        ["Si", "O"],
        basis=[(0.0, 0.0, 0.0), (0.125, 0.125, 0.125)],
        spacegroup=227,
        setting=1,
        cellpar=[7.16, 7.16, 7.16, 90, 90, 90],
    ).repeat((2, 2, 2))
    model = ClassicalPairModel("bks")
    state = state_of([cryst])
    state.rng = 7
    units = ts.units.MetalUnits
    dt = 0.001 * units.time  # 1 fs
    kt = torch.tensor(300.0 * units.temperature, dtype=torch.float64)
    md = ts.nvt_langevin_init(state, model, kT=kt)
    for _ in range(200):  # 0.2 ps Langevin at 300 K first
        md = ts.nvt_langevin_step(md, model, dt=dt, kT=kt, gamma=torch.tensor(10.0 / units.time))
    md = ts.nve_init(md, model, kT=kt)  # keeps the thermalised momenta
    n_steps, energies = 500, []
    for step in range(n_steps + 1):
        if step:
            md = ts.nve_step(md, model, dt=dt)
        if step % 10 == 0:
            ke = ts.calc_kinetic_energy(masses=md.masses, momenta=md.momenta)
            energies.append((md.energy + ke).item() / len(cryst))
    t_ps = np.arange(len(energies)) * 0.010
    slope = np.polyfit(t_ps, energies, 1)[0]
    temp = ts.calc_temperature(masses=md.masses, momenta=md.momenta)  # K
    assert 150 < float(temp) < 600  # it really moved
    assert abs(slope) < 1e-4, f"drift {slope:.2e} eV/atom/ps"
    assert np.ptp(energies) < 5e-4


@pytest.mark.slow
def test_compiled_kernel_matches_eager(monkeypatch):
    """torch.compile'd kernel (used for speed) gives the eager results (compiles ~1 min), with
    the compiled all-image search building the list of equal-size small cells, and vesin
    building it where that search would exceed its size limit."""
    from vitriflow.potentials import pair_lists

    systems = [na_silicate(seed=9), na_silicate(seed=10)]
    eager = ClassicalPairModel("shik")(state_of(systems))
    compiled_model = ClassicalPairModel("shik", compile=True)
    compiled_model._vesin_pairs = lambda *args: pytest.fail("small cells went to vesin")
    compiled = compiled_model(state_of(systems))
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-10, atol=1e-10)
    monkeypatch.setattr(pair_lists, "MAX_IMAGE_TESTS", 1000)
    capped = ClassicalPairModel("shik", compile=True)
    with monkeypatch.context() as m:
        m.setattr(pair_lists, "_small_cell_pairs",
                  lambda *args, **kwargs: pytest.fail("search beyond its size limit"))
        out = capped(state_of(systems))
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- per-system parameters
def _variant(name: str, q_si: float, scale_a: float, c_oo: float):
    """A BKS-like Si/O set with other charges and pair terms (neutral SiO2)."""
    from vitriflow.potentials.classical_params import ParameterSet

    b = PARAMETER_SETS["bks"]
    a, bb, c, d = b.pairs["O-Si"]
    return ParameterSet(
        name=name, form="buckingham", charges={"Si": q_si, "O": -q_si / 2},
        pairs={"O-Si": (a * scale_a, bb, c, d), "O-O": (*b.pairs["O-O"][:2], c_oo, 0.0),
               "Si-Si": (3150.0, 2.85, 600.0, 0.0)},
        walls=dict(b.walls), citation="test variant",
    )


def test_per_system_parameters_equal_separate_runs():
    """One batch whose systems each have their own charges and pair terms gives, per system,
    the energies, forces and stress of a separate run of that parameter set (float64)."""
    from vitriflow.potentials.classical import PerSystemPairModel

    sets = [_variant("a", 2.4, 1.0, 175.0), _variant("b", 1.9, 0.8, 40.0),
            _variant("c", 3.0, 1.3, 260.0)]
    systems = [sio2(12, seed=1), sio2(20, seed=2), sio2(16, seed=3)]
    for coulomb in ("dsf", "wolf"):
        opts = {"coulomb": coulomb, "cutoff": 7.0, "coulomb_cutoff": 7.5, "alpha": 0.2,
                "truncation": "smooth" if coulomb == "wolf" else "shift"}
        batched = PerSystemPairModel(sets, **opts)(state_of(systems))
        offset = 0
        for k, atoms in enumerate(systems):
            single = ClassicalPairModel(sets[k], **opts)(state_of([atoms]))
            n = len(atoms)
            assert batched["energy"][k].item() == pytest.approx(single["energy"].item(),
                                                                  rel=1e-10, abs=1e-10)
            torch.testing.assert_close(batched["forces"][offset:offset + n], single["forces"],
                                       rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(batched["stress"][k], single["stress"][0],
                                       rtol=1e-10, atol=1e-10)
            offset += n
        # the sets really differ
        assert len({round(float(e) / len(a), 3) for e, a in zip(batched["energy"], systems,
                                                                   strict=True)}) == 3


def test_per_system_model_swaps_sets_and_refuses_a_mismatch():
    from vitriflow.potentials.classical import PerSystemPairModel

    systems = [sio2(12, seed=4), sio2(12, seed=5)]
    model = PerSystemPairModel([_variant("a", 2.4, 1.0, 175.0), _variant("b", 2.0, 1.0, 175.0)])
    first = model(state_of(systems))["energy"]
    model.set_parameters([_variant("b", 2.0, 1.0, 175.0), _variant("a", 2.4, 1.0, 175.0)])
    swapped = model(state_of(systems))["energy"]
    ref = [ClassicalPairModel(_variant(n, q, 1.0, 175.0))(state_of([a]))["energy"].item()
           for (n, q), a in zip([("b", 2.0), ("a", 2.4)], systems, strict=True)]
    assert swapped.tolist() == pytest.approx(ref, rel=1e-12)
    assert first[0].item() != pytest.approx(swapped[0].item())
    with pytest.raises(ValueError, match="holds 2 per-system parameter sets but the state has 3"):
        model(state_of(systems + [sio2(8)]))
    import dataclasses

    wolf = dataclasses.replace(_variant("w", 2.4, 1.0, 175.0), coulomb="wolf")
    with pytest.raises(ValueError, match="has coulomb='wolf' but the model uses 'dsf'"):
        PerSystemPairModel(["bks", wolf])
    assert PerSystemPairModel(["bks", wolf], coulomb="wolf").coulomb == "wolf"
    with pytest.raises(ValueError, match="has elements"):
        PerSystemPairModel(["bks", "teter"])


def test_parameter_file_round_trip_and_buckingham_model(tmp_path):
    """A fitted set written as a file loads into the same potential (walls folded into D)."""
    from vitriflow.potentials.classical import buckingham_model
    from vitriflow.potentials.classical_params import load_parameter_file, write_parameter_file

    path = tmp_path / "fit.yaml"
    write_parameter_file(PARAMETER_SETS["bks"], path, provenance={"stage": "test"})
    loaded = load_parameter_file(path)
    assert loaded.walls == {} and loaded.pairs["O-Si"][3] == PARAMETER_SETS["bks"].walls["O-Si"]
    atoms = [sio2(16, seed=6)]
    a = ClassicalPairModel("bks")(state_of(atoms))
    b = buckingham_model(path)(state_of(atoms))
    assert b["energy"].item() == pytest.approx(a["energy"].item(), rel=1e-13)
    torch.testing.assert_close(b["forces"], a["forces"], rtol=1e-12, atol=1e-12)
    # file settings are defaults that options override
    assert buckingham_model(path, cutoff=6.0).cutoff == 6.0 and loaded.coulomb == "dsf"
    # the potential-registry loader (name, device=, dtype=, **potential_options)
    from vitriflow.potentials.classical import load_buckingham

    model = load_buckingham("buckingham", device="cpu", dtype=None, parameters=str(path), skin=0.5)
    assert model.skin == 0.5 and model.dtype == torch.float64
    with pytest.raises(ValueError, match="potential_options.parameters is missing"):
        load_buckingham("buckingham")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["pairs"]["O-Si"].update(rho=-0.2), r"pairs\.O-Si\.rho: expected a number > 0"),
    (lambda d: d.update(colomb="dsf"), r"unknown key\(s\) \['colomb'\]"),
    (lambda d: d["pairs"].update({"Na-O": {"A": 1.0, "rho": 0.3}}), r"pairs\.Na-O: expected 'X-Y'"),
    (lambda d: d.update(coulomb="ewald"), r"coulomb: expected one of"),
    (lambda d: d.pop("charges"), r"charges: expected a non-empty mapping"),
])
def test_bad_parameter_file_is_refused_in_one_line(tmp_path, edit, message):
    import yaml

    from vitriflow.potentials.classical_params import load_parameter_file, parameter_set_to_dict

    doc = parameter_set_to_dict(PARAMETER_SETS["bks"])
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=message) as err:
        load_parameter_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="does not exist"):
        load_parameter_file(tmp_path / "none.yaml")
