"""MD-based glass properties: elastic tensor, cooling scan (Tg, CTE), MSD/diffusion, Green-Kubo."""

import numpy as np
import pandas as pd
import pytest
import torch

from vitriflow.potentials import load_model
from vitriflow.properties import elastic, thermal, transport

EV_A3_TO_GPA = 160.21766208
ELASTIC = {"max_strain": 0.002, "n_deform": 3, "fmax_eV_A": 1e-4, "max_steps": 2000,
           "optimizer": "lbfgs", "relax_cell": False, "cell_fmax_eV_A": 1e-2,
           "max_strain_asymmetry": 0.2}
THERMAL = {"T_start_K": 1500.0, "T_end_K": 300.0, "step_K": 400.0, "melt_steps": 0,
           "equil_steps": 10, "sample_steps": 10, "sample_every": 5, "timestep_fs": 1.0,
           "pressure_GPa": 0.0, "thermostat_tau_fs": 20.0, "barostat_tau_fs": 500.0,
           "checkpoint_every": 10, "min_points_per_line": 2}
TRANSPORT = {"timestep_fs": 1.0, "thermostat_tau_fs": 50.0, "equil_steps": 20,
             "production_steps": 60, "sample_every": 5, "checkpoint_every": 20,
             "fit_start_ps": 0.01, "fit_end_fraction": 0.5,
             "green_kubo": {"stress_every": 2, "max_lag_fraction": 0.5, "plateau_tolerance": 0.1}}


def _quartz(reps=(2, 2, 2)):
    """alpha-quartz (P3_221), the experimental cell."""
    from ase.spacegroup import crystal

    q = crystal(["Si", "O"], basis=[(0.4697, 0, 2 / 3), (0.4135, 0.2669, 0.1191 - 1 / 3)],
                spacegroup=154, cellpar=[4.916, 4.916, 5.405, 90, 90, 120])
    return q * reps


def _relax(atoms, model, fmax, cell):
    import torch_sim as ts

    state = ts.io.atoms_to_state(atoms, device=torch.device("cpu"), dtype=torch.float64)
    init = {"cell_filter": ts.CellFilter.frechet} if cell else None
    out = ts.optimize(system=state, model=model, optimizer=ts.Optimizer.lbfgs,
                      convergence_fn=ts.generate_force_convergence_fn(
                          force_tol=fmax, include_cell_forces=cell),
                      max_steps=3000, init_kwargs=init)
    return out.to_atoms()[0]


def _voigt_stress_gpa(atoms, model):
    import torch_sim as ts

    s = model(ts.io.atoms_to_state(atoms, device=torch.device("cpu"), dtype=torch.float64))
    s = s["stress"][0].detach().numpy() * EV_A3_TO_GPA
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def _full(row):
    c = np.zeros((6, 6))
    c[np.triu_indices(6)] = [row[k] for k in elastic.cij_columns()]
    return c + c.T - np.diag(np.diag(c))


@pytest.fixture(scope="module")
def bks():
    # smooth truncation: with a hard cutoff the stress jumps whenever a pair crosses it, and the
    # constants of a small cell then depend on the strain amplitude by several GPa
    return load_model("bks", truncation="smooth")


@pytest.fixture(scope="module")
def quartz(bks):
    q = _relax(_quartz(), bks, 1e-5, cell=True)
    q.info.update(structure_id="quartz", label="SiO2", composition_index=0, replica=0)
    return q


# ----------------------------------------------------------------------------- elastic
def test_relaxed_ion_tensor_of_alpha_quartz_matches_independent_finite_differences(bks, quartz):
    """C_ij by central differences of the stress under a symmetric strain of +-0.001 (half the
    module's strain), atoms relaxed at each strained cell, never touching torch_sim.elastic."""
    row = elastic.elastic_properties([quartz], bks, ELASTIC)[0]
    assert row["status"] == "ok", row["reason"]
    c = _full(row)
    h, pairs = 1e-3, [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    fd = np.zeros((6, 6))
    for j, (k, m) in enumerate(pairs):
        e = np.zeros((3, 3))
        e[k, m] = e[m, k] = h if k == m else h / 2  # engineering shear strain h
        sig = []
        for sign in (1, -1):
            b = quartz.copy()
            b.set_cell(quartz.cell.array @ (np.eye(3) + sign * e), scale_atoms=True)
            sig.append(_voigt_stress_gpa(_relax(b, bks, 1e-4, cell=False), bks))
        fd[:, j] = (sig[0] - sig[1]) / (2 * h)
    np.testing.assert_allclose(c, fd, atol=2.0)  # GPa, of C33 ~ 120
    # trigonal symmetry of alpha-quartz comes out of the triclinic fit
    assert c[0, 0] == pytest.approx(c[1, 1], abs=1.0)
    assert c[0, 3] == pytest.approx(-c[1, 3], abs=1.0)
    assert abs(c[0, 4]) < 0.5 and abs(c[2, 3]) < 0.5
    assert 20 < row["bulk_modulus_GPa"] < 60 and 0 < row["poisson_ratio"] < 0.5
    assert row["youngs_modulus_GPa"] == pytest.approx(
        9 * row["bulk_modulus_GPa"] * row["shear_modulus_GPa"]
        / (3 * row["bulk_modulus_GPa"] + row["shear_modulus_GPa"]))
    # the atoms' relaxation matters: torch-sim's clamped-ion tensor is several times stiffer
    import torch_sim as ts

    state = ts.io.atoms_to_state(quartz, device=torch.device("cpu"), dtype=torch.float64)
    state.stress = bks(state)["stress"]
    clamped = ts.elastic.calculate_elastic_tensor(state, bks, max_strain_normal=0.002,
                                                  max_strain_shear=0.002, n_deform=3)
    assert clamped[0, 0].item() * EV_A3_TO_GPA > 3 * c[0, 0]


class _Picky(torch.nn.Module):
    """Raises for any batch holding a cell of ``raise_n`` atoms; NaN stress for ``nan_n``."""

    def __init__(self, inner, raise_n, nan_n):
        super().__init__()
        self.inner, self.raise_n, self.nan_n = inner, raise_n, nan_n

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def forward(self, state, **kw):
        counts = torch.bincount(state.system_idx)
        if (counts == self.raise_n).any():
            raise RuntimeError("cannot evaluate this cell")
        out = dict(self.inner(state, **kw))
        bad = counts == self.nan_n
        if bad.any():
            out["stress"] = out["stress"].clone()
            out["stress"][bad] = float("nan")
        return out


def test_a_structure_that_cannot_be_strained_fails_alone(bks):
    cells = {"ok-a": _quartz((1, 1, 2)), "raises": _quartz((1, 1, 1)),
             "nan-stress": _quartz((1, 1, 3)), "ok-b": _quartz((2, 1, 1)),
             "upstream": _quartz((1, 1, 1))}
    for sid, a in cells.items():
        a.info.update(structure_id=sid)
    cells["upstream"].info.update(status="failed", reason="md: temperature runaway")
    cfg = dict(ELASTIC, fmax_eV_A=1e-3)  # fixed cell: a NaN stress reaches the fit's check
    rows = {r["structure_id"]: r for r in elastic.elastic_properties(
        list(cells.values()), _Picky(bks, raise_n=9, nan_n=27), cfg)}
    assert rows["raises"]["status"] == "failed"
    assert "model error" in rows["raises"]["reason"]
    assert "cannot evaluate" in rows["raises"]["reason"]
    assert rows["nan-stress"]["status"] == "failed"
    assert "non-finite stress" in rows["nan-stress"]["reason"]
    assert rows["upstream"] == {"structure_id": "upstream", "status": "failed",
                                "reason": "md: temperature runaway"}
    alone = elastic.elastic_properties([cells["ok-a"]], bks, cfg)[0]
    for sid in ("ok-a", "ok-b"):
        assert rows[sid]["status"] == "ok", rows[sid]["reason"]
    assert rows["ok-a"]["bulk_modulus_GPa"] == pytest.approx(alone["bulk_modulus_GPa"], rel=0.02)
    long = elastic.long_table(list(rows.values()))
    assert set(long["structure_id"]) == {"ok-a", "ok-b"}
    assert set(long["property"]) == {"bulk_modulus", "shear_modulus", "elastic_modulus",
                                     "poisson_ratio"}


def test_replica_summary_averages_the_replicas_that_succeeded():
    rows = [{"system": "s", "composition_index": 0, "label": "A", "status": "ok",
             "bulk_modulus_GPa": 30.0}, {"system": "s", "composition_index": 0, "label": "A",
                                         "status": "ok", "bulk_modulus_GPa": 34.0},
            {"system": "s", "composition_index": 0, "label": "A", "status": "failed"},
            {"system": "s", "composition_index": 1, "label": "B", "status": "failed"}]
    s = elastic.replica_summary(rows, ["bulk_modulus_GPa"]).set_index("label")
    assert s.loc["A", "bulk_modulus_GPa_mean"] == 32.0 and s.loc["A", "n_ok"] == 2
    assert s.loc["A", "bulk_modulus_GPa_std"] == pytest.approx(np.std([30, 34], ddof=1))
    assert s.loc["B", "n_ok"] == 0 and np.isnan(s.loc["B", "bulk_modulus_GPa_mean"])


# ----------------------------------------------------------------------------- thermal
def _hinge(t, tg, v0, slope_glass, slope_liquid):
    return v0 + slope_glass * (t - tg) + (slope_liquid - slope_glass) * np.maximum(t - tg, 0)


def test_two_line_fit_recovers_the_break_of_a_noisy_v_of_t():
    rng = np.random.default_rng(3)
    t = np.arange(300.0, 3001.0, 100.0)
    for tg in (1210.0, 1650.0, 2200.0):
        v = _hinge(t, tg, 16.0, 16.0 * 3e-5, 16.0 * 1.5e-4) + rng.normal(0, 0.01, t.size)
        fit = thermal.fit_two_lines(t, v, 3)
        assert abs(fit["break"] - tg) < 80
        assert fit["break_low"] <= fit["break"] <= fit["break_high"]
        assert fit["slope_low"] == pytest.approx(16.0 * 3e-5, rel=0.25)
        assert fit["slope_high"] == pytest.approx(16.0 * 1.5e-4, rel=0.1)
    with pytest.raises(ValueError, match="min_points_per_line"):
        thermal.fit_two_lines(t[:5], v[:5], 3)


def test_cte_is_the_low_temperature_slope_over_the_volume():
    t = np.arange(300.0, 2501.0, 100.0)
    v = _hinge(t, 1400.0, 15.0, 6e-4, 3e-3)  # Å^3/atom, noise-free
    table = pd.DataFrame({"T_target_K": t, "volume_per_atom_A3": v,
                          "enthalpy_per_atom_eV": _hinge(t, 1400.0, -10.0, 3e-4, 5e-4),
                          "density_g_cm3": 40.0 / v})
    row = thermal.analyse_scan(table, {"min_points_per_line": 3})
    v300 = 15.0 + 6e-4 * (300 - 1400)
    assert row["status"] == "ok" and row["tg_K"] == pytest.approx(1400, abs=1)
    assert row["tg_enthalpy_K"] == pytest.approx(1400, abs=1)
    assert row["cte_volumetric_per_K"] == pytest.approx(6e-4 / v300, rel=1e-6)
    assert row["cte_linear_ppm_per_K"] == pytest.approx(6e-4 / v300 / 3 * 1e6, rel=1e-6)
    assert row["cp_glass_eV_per_atom_K"] == pytest.approx(3e-4, rel=1e-6)
    flat = thermal.analyse_scan(table.assign(volume_per_atom_A3=15.0 + 1e-3 * (t - 300)),
                                {"min_points_per_line": 3})
    assert flat["status"] == "failed" and "no break" in flat["reason"]


def test_scan_schedule_and_cooling_rate():
    cfg = dict(THERMAL, T_start_K=3000.0, T_end_K=300.0, step_K=250.0, melt_steps=100,
               equil_steps=400, sample_steps=600, sample_every=50)
    temps = thermal.scan_temperatures(cfg)
    assert temps[0] == 3000 and temps[-1] == 300 and temps[-2] == 500  # last step shorter
    p = thermal.scan_protocol(cfg)
    assert [s.ensemble for s in p.stages] == ["npt"] * len(temps)
    assert p.stages[0].steps == 1100 and p.stages[1].steps == 1000 and not p.relax_enabled
    assert thermal.cooling_rate_K_per_ps(cfg) == pytest.approx(250.0)  # 250 K per 1 ps
    with pytest.raises(ValueError, match="sample_every"):
        thermal.scan_protocol_config(dict(cfg, sample_every=70))


@pytest.fixture(scope="module")
def teter():
    return load_model("teter")


@pytest.fixture(scope="module")
def glasses(teter):
    from vitriflow.md import prerelax
    from vitriflow.structures.packing import PackingRequest, pack

    reqs = [PackingRequest({"Si": 8, "O": 16}, 17.0, 10 + i,
                           {"structure_id": f"sio2-r{i}", "seed": 10 + i, "system": "sio2",
                            "composition_index": 0, "replica": i, "label": "SiO2"})
            for i in range(2)]
    return prerelax(pack(reqs), teter, 100, "cpu")


def test_short_cooling_scan_runs_and_resumes_to_the_same_result(teter, glasses, tmp_path):
    rows, table = thermal.run_cooling_scan(glasses, teter, THERMAL, tmp_path / "a.pt")
    assert len(table) == 2 * 4 and set(table["n_samples"]) == {2}  # 10 steps every 5
    assert list(table[table["structure_id"] == "sio2-r0"]["T_target_K"]) == [1500, 1100, 700, 300]
    assert (table["density_g_cm3"] > 1).all() and (table["enthalpy_per_atom_eV"] < 0).all()
    for r in rows:
        assert r["cooling_rate_K_per_ps"] == pytest.approx(400 / 0.02)
        assert np.isfinite(r["tg_K"]) and "cte_linear_ppm_per_K" in r
    with pytest.raises(KeyboardInterrupt):
        thermal.run_cooling_scan(glasses, teter, THERMAL, tmp_path / "b.pt", stop_after_segments=3)
    rows_b, table_b = thermal.run_cooling_scan(glasses, teter, THERMAL, tmp_path / "b.pt")
    pd.testing.assert_frame_equal(table, table_b)
    assert [r["tg_K"] for r in rows] == [r["tg_K"] for r in rows_b]


def test_observables_follow_the_cell_and_the_energy(teter, glasses, tmp_path):
    """The engine's observables: the last row's volume is the final cell's, and with
    observables off the trajectory and trace are those of a run without them."""
    from vitriflow.md import run_melt_quench

    p = thermal.scan_protocol(THERMAL)
    obs = []
    finals, trace = run_melt_quench(glasses, teter, p, tmp_path / "o.pt", observables=obs,
                                    progress=False)
    plain, trace_plain = run_melt_quench(glasses, teter, p, tmp_path / "p.pt", progress=False)
    for a, b in zip(finals, plain, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert trace == trace_plain
    df = pd.DataFrame(obs)
    last = df[df["structure_id"] == "sio2-r0"].iloc[-1]
    assert last["volume_A3"] == pytest.approx(finals[0].get_volume(), rel=1e-12)
    e_last = [r for r in trace if r["structure_id"] == "sio2-r0"][-1]["energy_per_atom_eV"]
    assert last["potential_energy_eV"] / 24 == pytest.approx(e_last, rel=1e-12)
    assert np.isfinite(df[["p_xx_GPa", "p_xy_GPa"]].to_numpy()).all()


# ----------------------------------------------------------------------------- transport
def test_unwrapping_follows_atoms_across_periodic_boundaries():
    cell = np.array([[6.0, 0, 0], [2.0, 5.0, 0], [1.0, 1.5, 7.0]])  # triclinic
    t = np.arange(40)[:, None, None]
    true = np.array([[[0.5, 0.5, 0.5], [5.0, 4.0, 6.5]]]) + t * np.array([[0.9, -0.7, 0.45],
                                                                          [-1.1, 0.3, 0.8]])
    frac = np.einsum("fai,ij->faj", true, np.linalg.inv(cell)) % 1.0
    wrapped = frac @ cell
    paths, jump = transport.unwrap(wrapped, np.repeat(cell[None], len(t), axis=0))
    np.testing.assert_allclose(paths, true, atol=1e-9)
    assert 0.1 < jump < 0.5


def test_msd_slope_of_a_random_walk_gives_its_diffusion_coefficient():
    rng = np.random.default_rng(7)
    d_true, dt, n_frames, n_atoms = 0.4, 0.01, 2000, 100  # Å^2/ps, ps
    steps = rng.normal(0.0, np.sqrt(2 * d_true * dt), (n_frames - 1, n_atoms, 3))
    paths = np.concatenate([np.zeros((1, n_atoms, 3)), np.cumsum(steps, axis=0)])
    paths[:, 50:] *= np.sqrt(2.0)  # the second element diffuses twice as fast
    cell = np.diag([12.0, 12.0, 12.0])
    wrapped = paths % 12.0
    unwrapped, _ = transport.unwrap(wrapped, np.repeat(cell[None], n_frames, axis=0))
    numbers = np.array([14] * 50 + [8] * 50)
    msd = transport.msd_per_element(unwrapped, numbers, np.ones(n_atoms))
    lags = np.arange(n_frames) * dt
    cols = transport.diffusion_columns(lags, msd, 0.1, 0.3)
    assert cols["D_Si_A2_ps"] == pytest.approx(d_true, rel=0.1)
    assert cols["D_O_A2_ps"] == pytest.approx(2 * d_true, rel=0.1)
    assert cols["D_O_m2_s"] == pytest.approx(cols["D_O_A2_ps"] * 1e-8)
    assert cols["D_Si_fit_r2"] > 0.95 and abs(cols["D_Si_alpha"] - 1) < 0.1
    assert cols["fit_start_ps"] == 0.1 and cols["fit_end_ps"] == pytest.approx(0.3 * lags[-1])
    assert cols["transport_note"] == ""
    short = transport.fit_diffusion(lags[:10], msd["Si"][:10], 0.1, 0.5)
    assert np.isnan(short["D_m2_s"]) and "too short" in short["note"]


def _ou(n, tau_steps, sigma, rng):
    """Ornstein-Uhlenbeck series: ACF sigma^2 exp(-lag / tau), integral sigma^2 tau."""
    from scipy.signal import lfilter

    a = np.exp(-1.0 / tau_steps)
    noise = rng.normal(0, sigma * np.sqrt(1 - a * a), n)
    noise[0] = rng.normal(0, sigma)
    return lfilter([1.0], [1.0, -a], noise)


def test_green_kubo_reports_a_plateau_only_when_there_is_one():
    rng = np.random.default_rng(11)
    n, tau, sigma, dt_ps, vol, temp = 300_000, 20.0, 0.2, 0.002, 1500.0, 3000.0
    off = np.stack([_ou(n, tau, sigma, rng) for _ in range(3)], axis=1)
    p = np.concatenate([np.full((n, 3), 1.0), off], axis=1)  # isotropic normal part: only shear
    eta_true = vol * 1e-30 / (1.380649e-23 * temp) * (sigma * 1e9) ** 2 * tau * dt_ps * 1e-12
    # the five components: three shear ACFs x 2 / 10 = 0.6 of one shear ACF
    res = transport.green_kubo_viscosity(p, vol, temp, dt_ps, 0.002, 0.1)
    assert res["eta_plateau"] and res["eta_note"] == ""
    assert res["eta_Pa_s"] == pytest.approx(0.6 * eta_true, rel=0.15)
    short = transport.green_kubo_viscosity(p[:400], vol, temp, dt_ps, 0.1, 0.1)
    assert not short["eta_plateau"] and np.isnan(short["eta_Pa_s"])
    assert "not plateaued" in short["eta_note"] and np.isfinite(short["eta_estimate_Pa_s"])


def test_short_transport_run_gives_diffusion_per_element_and_says_viscosity_is_unconverged(
        teter, glasses, tmp_path):
    from vitriflow.config import with_defaults
    from vitriflow.md import Protocol

    proto = Protocol.from_config(with_defaults("config#protocol", {"stages": [
        {"name": "melt", "steps": 10, "temperature_K": 3000},
        {"name": "quench", "steps": 10, "temperature_K": [3000, 300]}]}))
    assert transport.melt_temperatures(proto) == [3000.0]
    rows, table = transport.run_transport(glasses, teter, TRANSPORT, tmp_path / "t.pt", 3000.0,
                                          green_kubo=True)
    for r in rows:
        assert r["status"] == "ok", r["reason"]
        assert r["D_Si_A2_ps"] > 0 and r["D_O_A2_ps"] > 0 and r["transport_T_K"] == 3000
        assert r["fit_end_ps"] == pytest.approx(0.5 * 0.055)
        assert not r["eta_plateau"] and np.isnan(r["eta_Pa_s"])
        assert "Green-Kubo" in r["eta_note"] and np.isfinite(r["eta_estimate_Pa_s"])
        assert 0 < r["unwrap_max_jump"] < 0.2
    assert set(table["element"]) == {"Si", "O"} and (table["msd_A2"] >= 0).all()
    summary = transport.replica_summary(rows)
    assert summary.loc[0, "n_ok"] == 2 and summary.loc[0, "D_O_m2_s_mean"] > 0
