"""DFT stage: selection, backends (GPAW run, VASP inputs, user tables) and comparison maths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

from vitriflow.dft.chemistry import classify
from vitriflow.dft.compare import (
    affine_correction,
    compute_energies,
    error_table,
    merge_energies,
    summarize,
)
from vitriflow.dft.selection import (
    build_selection,
    molecule_in_box,
    select_amorphous,
    selection_table,
)
from vitriflow.dft.table_backend import energies_from_table

REPO = Path(__file__).parents[1]
DATA = REPO / "tests" / "data" / "dft"


def _quenched(n_comp=5, n_rep=3, failed=()):
    frames = []
    for ci in range(n_comp):
        for r in range(n_rep):
            a = Atoms("Si2O4", positions=np.random.default_rng(ci * 10 + r).random((6, 3)) * 4,
                      cell=[5, 5, 5], pbc=True)
            sid = f"SiO2-c{ci:04d}-r{r:02d}"
            a.info = {"structure_id": sid, "composition_index": ci, "replica": r, "label": f"c{ci}",
                      "status": "failed" if sid in failed else "ok", "potential": "sevennet-0",
                      "energy_per_atom_eV": -7.0}
            frames.append(a)
    return frames


# ---------------------------------------------------------------- selection
def test_selection_is_deterministic_and_stratified():
    q = _quenched()
    ids = lambda sel: [a.info["structure_id"] for a, _ in sel]  # noqa: E731
    a = ids(select_amorphous(q, 4, seed=7))
    assert a == ids(select_amorphous(list(reversed(q)), 4, seed=7))
    assert len(a) == 4
    comps = [int(s.split("-c")[1][:4]) for s in a]
    assert comps == [0, 1, 3, 4]  # evenly spaced over 5 compositions, one each
    seven = ids(select_amorphous(q, 7, seed=7))  # all compositions once, then further replicas
    assert (sorted({int(s.split("-c")[1][:4]) for s in seven[:5]}) == [0, 1, 2, 3, 4]
            and len(set(seven)) == 7)
    assert len(set(ids(select_amorphous(q, 15, seed=7)))) == 15
    seeds = {tuple(ids(select_amorphous(q, 4, seed=s))) for s in range(6)}
    assert len(seeds) > 1  # replica choice follows the seed


def test_selection_failures_and_neighbours():
    q = _quenched(failed={"SiO2-c0002-r00", "SiO2-c0002-r01", "SiO2-c0002-r02"})
    base = select_amorphous(q, 1, seed=1)
    assert len(base) == 1
    sel = select_amorphous(q, 1, seed=1, failure_neighbours=True, include_failed=True)
    why = {a.info["structure_id"]: w for a, w in sel}
    comps = {int(s.split("-c")[1][:4]) for s in why}
    assert {1, 2, 3} <= comps
    assert sum(w == "md failed" for w in why.values()) == 3
    assert not any(a.info["status"] != "ok" for a, w in sel if w == "stratified")


def test_build_selection_adds_crystals_and_elements():
    q = _quenched(n_comp=2, n_rep=1)
    quartz = bulk("Si", "diamond", a=5.43)  # stand-in cell, relabelled as SiO2 phase
    xtal = Atoms("Si3O6", positions=np.random.default_rng(0).random((9, 3)) * 4, cell=[5, 5, 5],
                 pbc=True)
    xtal.info = {"material_id": "mp-7000", "role": "phase", "formula": "SiO2"}
    si = quartz.copy()
    si.info = {"material_id": "mp-149", "role": "element", "mp_energy_per_atom_eV": -5.42}
    si_bad = quartz.copy()
    si_bad.info = {"material_id": "mp-999", "role": "element", "mp_energy_per_atom_eV": -5.0}
    refs = pd.DataFrame({"composition_index": [0, 1],
                         "decomposition": [json.dumps([{"material_id": "mp-7000", "formula": "SiO2",
                                                        "fraction": 1.0}])] * 2})
    frames, warnings = build_selection("SiO2", q, refs, [si_bad, xtal, si], n_per_system=2, seed=0,
                                       molecule_box_A=8.0)
    t = selection_table(frames)
    assert list(t["role"]) == ["amorphous", "amorphous", "crystal", "element", "element"]
    assert set(t.loc[t["role"] == "element", "source_id"]) == {"mp-149", "molecule:O2"}
    o2 = frames[-2] if frames[-2].get_chemical_symbols() == ["O", "O"] else frames[-1]
    assert (np.allclose(o2.cell.lengths(), 8.0)
            and o2.get_distance(0, 1) == pytest.approx(1.2, abs=0.05))
    assert json.loads(t.iloc[0]["composition"]) == {"O": 4, "Si": 2}
    assert warnings == []
    with pytest.raises(ValueError, match="too small"):
        molecule_in_box("O", 3.0)


# ---------------------------------------------------------------- chemistry classes
@pytest.mark.parametrize("formula,cls", [
    ("SiO2", "oxides"), ("Na2O2SiO2", "oxides"), ("GeTe", "tellurides"), ("CuZr2", "alloys"),
    ("SiC", "carbides"), ("Li3N", "nitrides"), ("FeB", "borides"), ("NaCl", "chlorides"),
    ("CaF2", "fluorides"), ("Mg2Si", "silicides"), ("Si", "elements"), ("InSb", "antimonides"),
])
def test_chemistry_classes(formula, cls):
    assert classify(formula) == cls


# ---------------------------------------------------------------- comparison bookkeeping
def _synthetic():
    """System A-B with exact energies: mu_A=-1, mu_B=-2 (mlip), -3, -5 (dft); crystal AB; two
    amorphous AB."""
    sel = pd.DataFrame([
        ("X-el-A", "X", "element", {"A": 2}), ("X-el-B", "X", "element", {"B": 1}),
        ("X-xtal-AB", "X", "crystal", {"A": 2, "B": 2}),
        ("X-am-1", "X", "amorphous", {"A": 4, "B": 4}),
        ("X-am-2", "X", "amorphous", {"A": 2, "B": 6}),
        ("X-am-3", "X", "amorphous", {"A": 4, "B": 4}),
    ], columns=["structure_id", "system", "role", "comp"])
    # element symbols A,B are not real: map to Cu, Zr for pymatgen
    sel["composition"] = [json.dumps({{"A": "Cu", "B": "Zr"}[k]: v for k, v in c.items()})
                          for c in sel["comp"]]
    sel["n_atoms"] = [sum(c.values()) for c in sel["comp"]]
    sel = sel.drop(columns="comp")
    sel["reference_formation_energy_per_atom_eV"] = sel["structure_id"].map(
        {"X-el-A": 0.0, "X-el-B": 0.0, "X-xtal-AB": -0.4})
    sel["source_id"] = "mp-1"
    mlip_epa = {"X-el-A": -1.0, "X-el-B": -2.0, "X-xtal-AB": -1.9, "X-am-1": -1.7, "X-am-2": -1.95,
                "X-am-3": -1.8}
    dft_epa = {"X-el-A": -3.0, "X-el-B": -5.0, "X-xtal-AB": -4.5, "X-am-1": -4.2, "X-am-2": -4.9,
               "X-am-3": np.nan}
    n = dict(zip(sel["structure_id"], sel["n_atoms"], strict=True))
    mlip = pd.DataFrame({"structure_id": list(mlip_epa),
                         "energy_eV": [v * n[k] for k, v in mlip_epa.items()], "status": "ok"})
    dft = pd.DataFrame({"structure_id": list(dft_epa),
                        "energy_eV": [v * n[k] for k, v in dft_epa.items()],
                        "status": ["ok"] * 5 + ["failed"],
                        "reason": [""] * 5 + ["SCF not converged"]})
    return sel, mlip, dft


def test_formation_energy_bookkeeping_is_exact():
    sel, mlip, dft = _synthetic()
    df = compute_energies(merge_energies(sel, mlip, dft)).set_index("structure_id")
    # against the elemental phases, AB (x_A = 0.5): E_f = E - (0.5 mu_A + 0.5 mu_B)
    assert df.at["X-xtal-AB", "mlip_e_form_el"] == pytest.approx(-1.9 - (-1.5), abs=1e-12)
    assert df.at["X-xtal-AB", "dft_e_form_el"] == pytest.approx(-4.5 - (-4.0), abs=1e-12)
    assert df.at["X-am-1", "mlip_e_form_el"] == pytest.approx(-0.2, abs=1e-12)
    assert df.at["X-am-1", "dft_e_form_el"] == pytest.approx(-0.2, abs=1e-12)
    # A2B6 (x_A = 0.25)
    assert df.at["X-am-2", "mlip_e_form_el"] == pytest.approx(-1.95 - (0.25 * -1 + 0.75 * -2),
                                                              abs=1e-12)
    assert df.at["X-am-2", "dft_e_form_el"] == pytest.approx(-4.9 - (0.25 * -3 + 0.75 * -5),
                                                             abs=1e-12)
    # ΔE_am on the hull through A, AB, B: at AB the crystal itself
    assert df.at["X-am-1", "mlip_de_am"] == pytest.approx(0.2, abs=1e-12)
    assert df.at["X-am-1", "dft_de_am"] == pytest.approx(0.3, abs=1e-12)
    # at x_A=0.25: hull = half AB + half B
    hull_m = 0.5 * -1.9 + 0.5 * -2.0
    hull_d = 0.5 * -4.5 + 0.5 * -5.0
    assert df.at["X-am-2", "mlip_de_am"] == pytest.approx(-1.95 - hull_m, abs=1e-12)
    assert df.at["X-am-2", "dft_de_am"] == pytest.approx(-4.9 - hull_d, abs=1e-12)
    assert df.at["X-am-1", "err_de_am_meV"] == pytest.approx(-100.0, abs=1e-9)
    assert df.at["X-am-1", "chemistry"] == "alloys"
    # elements have zero formation energy by construction
    assert df.at["X-el-A", "dft_e_form_el"] == pytest.approx(0.0, abs=1e-12)


def test_fitted_chemical_potentials_absorb_an_elemental_reference_error():
    """DFT energies that are the MLIP's plus a shift per element, except that DFT's B, a molecule
    in a box, is 0.3 eV/atom off (as GPAW's O2 is against MP-fitted energies): formation energies
    against the elemental phases inherit the error, those on chemical potentials fitted to the
    crystal and the solid element do not."""
    from vitriflow.dft.compare import fitted_chemical_potentials

    sel, mlip, _ = _synthetic()
    sel["reference_formation_energy_per_atom_eV"] = sel["structure_id"].map(
        {"X-el-A": 0.0, "X-el-B": 0.0, "X-xtal-AB": -0.4})  # = the MLIP's own, consistent
    sel["source_id"] = sel["structure_id"].map({"X-el-B": "molecule:B2"}).fillna("mp-1")
    shift = {"Cu": -2.0, "Zr": -3.0}
    dft = mlip.copy()
    for i, row in sel.iterrows():
        comp = json.loads(row["composition"])
        dft.loc[i, "energy_eV"] += sum(n * shift[el] for el, n in comp.items())
    dft.loc[sel["structure_id"] == "X-el-B", "energy_eV"] += 0.3 * 1
    df = compute_energies(merge_energies(sel, mlip, dft)).set_index("structure_id")
    mu = fitted_chemical_potentials(df[df["role"] != "amorphous"], "mlip")
    assert mu == pytest.approx({"Cu": -1.0, "Zr": -2.0}, abs=1e-12)
    am = df.loc[["X-am-1", "X-am-2"]]
    assert (am["err_e_form_el_meV"].abs() > 100).all()  # the elemental error, 0.5-0.75 x 300 meV
    assert am["err_e_form_meV"].abs().max() < 1e-9
    # ΔE_am needs no element where the glass sits on a crystal's composition (AB), but off it the
    # hull runs through the elemental phase and takes its error along
    assert abs(am.at["X-am-1", "err_de_am_meV"]) < 1e-9 and am.at["X-am-2", "err_de_am_meV"] > 100


def test_failed_dft_job_is_kept_and_listed():
    sel, mlip, dft = _synthetic()
    df = compute_energies(merge_energies(sel, mlip, dft))
    s = summarize(df, include_total=False)
    assert s["n_dft_failed"] == 1 and s["failed_ids"] == ["X-am-3"]
    assert len(df) == 6 and np.isnan(df.set_index("structure_id").at["X-am-3", "dft_e_form"])
    assert s["n_e_form"] == 2  # the two converged amorphous structures still compared
    tab = error_table(df, include_total=False)
    assert tab.iloc[-1]["chemistry"] == "overall" and tab.iloc[-1]["paper MAE (Table 1)"] == 38
    assert "MAE E/atom" not in tab.columns


def test_affine_correction_recovers_a_line():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 0, 40)
    y = 1.1 * x + 0.05 + rng.normal(0, 0.002, 40)
    r = affine_correction(x, y, seed=0)
    assert (r["slope"] == pytest.approx(1.1, abs=0.01)
            and r["intercept_eV"] == pytest.approx(0.05, abs=0.01))
    assert r["cv_mae_corrected_meV"] < 3 < r["mae_raw_meV"]
    assert "reason" in affine_correction(x[:3], y[:3])


# ---------------------------------------------------------------- table backend
def test_table_backend_validates_and_refuses_unknown_ids(tmp_path):
    sel = pd.DataFrame({"structure_id": ["s1", "s2", "s3"], "n_atoms": [4, 8, 2]})
    good = pd.DataFrame({"structure_id": ["s1", "s2"], "energy_per_atom_eV": [-3.0, -4.0],
                         "status": ["ok", "ok"]})
    out = energies_from_table(good, sel)
    assert list(out["energy_eV"][:2]) == [-12.0, -32.0]
    assert out.set_index("structure_id").at["s3", "status"] == "missing"
    with pytest.raises(ValueError, match="unknown structure_id 'typo'"):
        energies_from_table(pd.DataFrame({"structure_id": ["typo"], "energy_eV": [1.0]}), sel)
    with pytest.raises(ValueError, match="appears more than once"):
        energies_from_table(pd.DataFrame({"structure_id": ["s1", "s1"], "energy_eV": [1.0, 2.0]}),
                            sel)
    with pytest.raises(ValueError, match="needs a column"):
        energies_from_table(pd.DataFrame({"structure_id": ["s1"], "E": [1.0]}), sel)
    with pytest.raises(ValueError, match="n_atoms=5"):
        energies_from_table(pd.DataFrame({"structure_id": ["s1"], "energy_eV": [1.0],
                                          "n_atoms": [5]}), sel)
    with pytest.raises(ValueError, match="no finite energy"):
        energies_from_table(pd.DataFrame({"structure_id": ["s1"], "energy_eV": [np.nan]}), sel)
    failed = energies_from_table(pd.DataFrame({"structure_id": ["s1"], "energy_eV": [np.nan],
                                               "status": ["failed"]}), sel)
    assert failed.at[0, "status"] == "failed"


# ---------------------------------------------------------------- VASP inputs
def test_vasp_inputs_are_mp_compatible(tmp_path):
    from vitriflow.dft.vasp_backend import parse_jobs, run_jobs, write_jobs

    feo = Atoms("FeO", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[4.3] * 3, pbc=True)
    feo.info = {"structure_id": "Fe-O-c0000-r00", "role": "amorphous"}
    si = bulk("Si", "diamond", a=5.43)
    si.info = {"structure_id": "Fe-O-el-Si", "role": "element"}
    jobs = write_jobs([feo, si], tmp_path, kind="static", potcar_spec=True)
    assert (sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
            == ["Fe-O-c0000-r00", "Fe-O-el-Si"])
    from pymatgen.io.vasp import Incar

    inc = Incar.from_file(tmp_path / "Fe-O-c0000-r00" / "INCAR")
    assert inc["ENCUT"] == 520 and inc["PREC"] == "Accurate" and inc["LASPH"] and inc["ISPIN"] == 2
    assert inc["NSW"] == 0 and inc["LDAU"] and list(inc["LDAUU"]) == [5.3, 0]
    assert (tmp_path / "Fe-O-c0000-r00" / "POTCAR.spec").read_text().split() == ["Fe_pv", "O"]
    assert ("LDAU" not in Incar.from_file(tmp_path / "Fe-O-el-Si" / "INCAR")
            or not Incar.from_file(tmp_path / "Fe-O-el-Si" / "INCAR").get("LDAU"))
    assert set(jobs["input_set"]) == {"MPStaticSet"}
    relax = write_jobs([feo], tmp_path / "relax", kind="relax", potcar_spec=True)
    assert relax.at[0, "input_set"] == "MPRelaxSet"
    assert Incar.from_file(tmp_path / "relax" / "Fe-O-c0000-r00" / "INCAR")["ISIF"] == 3
    # no VASP outputs: parsing marks every job failed instead of inventing energies
    parsed = parse_jobs(tmp_path)
    assert set(parsed["status"]) == {"failed"} and parsed["energy_eV"].isna().all()
    ran, _ = run_jobs(tmp_path, command="true")
    assert set(ran["run_status"]) == {"failed"} and ran["reason"].str.contains("POTCAR").all()


def test_vasp_jobs_of_an_earlier_geometry_or_selection_are_not_read(tmp_path):
    from vitriflow.dft.vasp_backend import parse_jobs, write_jobs

    a = bulk("Si", "diamond", a=5.43)
    a.info = {"structure_id": "s-c0000-r00", "role": "amorphous"}
    b = bulk("Si", "diamond", a=5.50)
    b.info = {"structure_id": "s-c0001-r00", "role": "amorphous"}
    write_jobs([a, b], tmp_path, potcar_spec=True)
    (tmp_path / "s-c0000-r00" / "vasprun.xml").write_text("<modeling>old run</modeling>")
    assert list(parse_jobs(tmp_path)["structure_id"]) == ["s-c0000-r00", "s-c0001-r00"]
    moved = a.copy()
    moved.positions[0] += 0.1  # an MD rerun: same id, another geometry
    moved.info = dict(a.info)
    write_jobs([moved], tmp_path, potcar_spec=True)  # and s-c0001-r00 is no longer selected
    parsed = parse_jobs(tmp_path)
    assert list(parsed["structure_id"]) == ["s-c0000-r00"]
    assert parsed.at[0, "reason"] == "no finished vasprun.xml"  # the old run's file was moved away
    stale = list((tmp_path / "_stale").glob("s-c0000-r00-*/vasprun.xml"))
    assert len(stale) == 1
    write_jobs([moved], tmp_path, potcar_spec=True)  # unchanged inputs: the folder stays
    assert len(list((tmp_path / "_stale").iterdir())) == 1


def _si_frames(ids):
    """One slightly different diamond-Si cell per id, as amorphous frames of a DFT selection."""
    frames = []
    for i, sid in enumerate(ids):
        a = bulk("Si", "diamond", a=5.43 + 0.01 * i)
        a.info = {"structure_id": sid, "role": "amorphous"}
        frames.append(a)
    return frames


def _runnable_vasp_jobs(root, ids):
    """VASP job folders that ``run_jobs`` will run: a (dummy) POTCAR instead of POTCAR.spec."""
    from vitriflow.dft.vasp_backend import write_jobs

    frames = _si_frames(ids)
    write_jobs(frames, root, potcar_spec=True)
    for sid in ids:
        job = Path(root) / sid / "vitriflow_job.json"
        job.write_text(json.dumps({**json.loads(job.read_text()), "potcar_spec": False}))
        (Path(root) / sid / "POTCAR").write_text("dummy")
    return frames


# stands in for VASP: a finished vasprun.xml where a file 'ok' exists, exit code 1 elsewhere
FAKE_VASP = "sh -c 'test -f ok && echo \"<modeling></modeling>\" > vasprun.xml'"


def test_vasp_run_table_is_the_same_for_a_fresh_run_and_a_rerun(tmp_path, monkeypatch):
    """Which jobs ran now and their wall times go to provenance: the rerun's table
    equals the first."""
    from vitriflow.dft.stage import vasp_run_stage
    from vitriflow.io import read_table

    root = tmp_path / "jobs"
    _runnable_vasp_jobs(root, ["good", "bad"])
    (root / "good" / "ok").touch()
    monkeypatch.setenv("VASP_COMMAND", FAKE_VASP)
    tables = []
    for out in ("first.parquet", "again.parquet"):
        vasp_run_stage(tmp_path / "jobs.parquet", tmp_path / out, root, _stage_cfg())
        tables.append(read_table(tmp_path / out))
    (first, p1), (again, p2) = tables
    assert list(first.columns) == ["structure_id", "run_status", "reason"]
    assert first.equals(again) and list(first["run_status"]) == ["done", "failed"]
    assert first.at[1, "reason"].startswith("exit code 1")
    assert p1["ran"] == ["good", "bad"] and p2["ran"] == ["bad"]  # a failed job is tried again
    assert set(p1["wall_s"]) == {"good", "bad"} and set(p2["wall_s"]) == {"bad"}


def test_vasp_job_without_readable_metadata_fails_only_its_own_job(tmp_path):
    from vitriflow.dft.vasp_backend import parse_jobs, run_jobs, write_jobs

    ids = ["good", "garbled", "gone"]
    frames = _runnable_vasp_jobs(tmp_path, ids)
    (tmp_path / "good" / "vasprun.xml").write_text(_vasprun_xml(frames[0], -10.84))
    (tmp_path / "garbled" / "vitriflow_job.json").write_text('{"structure_id": "garbled", ')
    (tmp_path / "gone" / "vitriflow_job.json").unlink()
    ran, run = run_jobs(tmp_path, command="false")  # 'good' is finished, the others cannot run
    ran = ran.set_index("structure_id")
    assert list(ran.index) == ids and run["ran"] == []
    assert ran.at["good", "run_status"] == "done"
    assert ran.at["garbled", "reason"].startswith("vitriflow_job.json missing or unreadable "
                                                  "(JSONDecodeError")
    assert ran.at["gone", "reason"].startswith("vitriflow_job.json missing or unreadable "
                                               "(FileNotFoundError")
    parsed = parse_jobs(tmp_path, mp2020=False).set_index("structure_id")
    assert list(parsed.index) == ids and parsed.at["good", "status"] == "ok"
    assert parsed.at["good", "energy_eV"] == pytest.approx(-10.84)
    assert (parsed.loc[["garbled", "gone"], "status"] == "failed").all()
    assert parsed.at["garbled", "reason"] == ran.at["garbled", "reason"]
    # rewriting the inputs moves the folders without readable metadata away and starts them afresh
    write_jobs(frames, tmp_path, potcar_spec=True)
    assert (sorted(p.name for p in (tmp_path / "_stale").iterdir())
            == ["garbled-unknown", "gone-unknown"])
    again = parse_jobs(tmp_path, mp2020=False).set_index("structure_id")
    assert (again.loc[["garbled", "gone"], "reason"] == "no finished vasprun.xml").all()
    assert again.at["good", "status"] == "ok"
    # a damaged index of the jobs stops the system in one line that says how to repair it
    (tmp_path / "selection.json").write_text('["good", "garb')
    with pytest.raises(ValueError,
                       match=r"selection.json: unreadable \(JSONDecodeError.*rerun the "
                             r"dft_vasp_inputs"):
        parse_jobs(tmp_path, mp2020=False)
    write_jobs(frames, tmp_path, potcar_spec=True)  # the repair the message names
    assert parse_jobs(tmp_path, mp2020=False).set_index("structure_id").at["good", "status"] == "ok"


def _vasprun_xml(atoms: Atoms, energy: float | str, ldauu: str = "") -> str:
    """A minimal finished vasprun.xml of a converged PBE static run.

    ``ldauu``: GGA+U with these U."""
    def v(rows):
        return "".join("<v>" + " ".join(f"{x:.8f}" for x in r) + "</v>" for r in rows)

    syms = atoms.get_chemical_symbols()
    species = list(dict.fromkeys(syms))
    struct = (f'<crystal><varray name="basis">{v(atoms.cell[:])}</varray></crystal>'
              f'<varray name="positions">{v(atoms.get_scaled_positions())}</varray>')
    e = "".join(f'<i name="{k}">{energy}</i>'
                for k in ("e_fr_energy", "e_wo_entrp", "e_0_energy"))
    calc = (f"<calculation>{f'<scstep><energy>{e}</energy></scstep>' * 12}"
            f"<structure>{struct}</structure><energy>{e}</energy></calculation>")
    atoms_rc = "".join(f"<rc><c>{x}</c><c>{species.index(x) + 1}</c></rc>" for x in syms)
    types_rc = "".join(f"<rc><c>{syms.count(x)}</c><c>{x}</c><c>1.0</c><c>4.0</c>"
                       f"<c>PAW_PBE {x} 05Jan2001</c></rc>"
                       for x in species)
    params = "".join(f'<i type="{t}" name="{k}">{val}</i>' for t, k, val in [
        ("int", "NELM", 100), ("int", "NSW", 0), ("int", "IBRION", -1), ("int", "ISPIN", 1),
        ("string", "GGA", "--"), ("logical", "LHFCALC", "F"),
        ("logical", "LDAU", "T" if ldauu else "F")])
    params += '<i name="AEXX">0.0</i><i name="HFSCREEN">0.0</i>'
    incar = (f'<i type="logical" name="LDAU">T</i><v name="LDAUU">{ldauu}</v>'
             f'<v name="LDAUJ">{" 0" * len(ldauu.split())}</v>') if ldauu else ""
    return (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>'
            '<generator><i name="program" type="string">vasp</i>'
            '<i name="version" type="string">6.4.2</i>'
            '<i name="date" type="string">2024 01 01</i>'
            '<i name="time" type="string">00:00:00</i></generator>'
            f'<incar><i type="int" name="NSW">0</i>{incar}</incar>'
            '<kpoints><generation param="Gamma">'
            '<v type="int" name="divisions">1 1 1</v></generation>'
            '<varray name="kpointlist"><v>0 0 0</v></varray>'
            '<varray name="weights"><v>1</v></varray></kpoints>'
            f'<parameters>{params}</parameters>'
            f'<atominfo><array name="atoms"><set>{atoms_rc}</set></array>'
            f'<array name="atomtypes"><set>{types_rc}</set></array></atominfo>'
            f'<structure name="initialpos">{struct}</structure>{calc}'
            f'<structure name="finalpos">{struct}</structure></modeling>\n')


def test_one_unparsable_vasprun_fails_only_its_own_job(tmp_path):
    from vitriflow.dft.vasp_backend import parse_jobs, write_jobs

    ids = ["good", "overflow", "bad-u", "garbage"]
    frames = _si_frames(ids)
    write_jobs(frames, tmp_path, potcar_spec=True)
    (tmp_path / "good" / "vasprun.xml").write_text(_vasprun_xml(frames[0], -10.84))
    (tmp_path / "overflow" / "vasprun.xml").write_text(_vasprun_xml(frames[1], "**************"))
    # pymatgen reads this file but raises on its U values (two for one species) only later
    (tmp_path / "bad-u" / "vasprun.xml").write_text(_vasprun_xml(frames[2], -10.8, ldauu="5.3 2.0"))
    (tmp_path / "garbage" / "vasprun.xml").write_text(
        "<modeling><generator>\x01 not xml</modeling>")
    for mp2020 in (True, False):
        df = parse_jobs(tmp_path, mp2020=mp2020).set_index("structure_id")
        assert list(df.index) == ids
        assert df.at["good", "status"] == "ok" and df.at["good", "reason"] == ""
        assert (df.at["good", "energy_eV"] == df.at["good", "energy_corrected_eV"]
                == pytest.approx(-10.84))
        assert ((df.loc[ids[1:], "status"] == "failed").all()
                and df.loc[ids[1:], "energy_per_atom_eV"].isna().all())
        assert df.at["overflow", "reason"] == "vasprun.xml has no total energy"
        assert df.at["bad-u", "reason"].startswith("vasprun.xml unreadable (VaspParseError: "
                                                   "Length of U")
        assert df.at["garbage", "reason"].startswith("vasprun.xml unreadable (XMLSyntaxError")


# ---------------------------------------------------------------- GPAW
def _gpaw_or_skip():
    from vitriflow.dft.gpaw_backend import gpaw_available

    ok, why = gpaw_available()
    if not ok:
        pytest.skip(why)


def test_gpaw_two_atom_single_point_matches_stored_value(tmp_path):
    _gpaw_or_skip()
    from vitriflow.dft.gpaw_backend import GpawSettings, run_batch

    ref = json.loads((DATA / "gpaw_si2_reference.json").read_text())
    si = bulk("Si", "diamond", a=5.43)
    si.info = {"structure_id": "si2"}
    s = GpawSettings(**ref["settings"])
    df, run = run_batch([si], s, tmp_path)
    assert df.at[0, "status"] == "ok" and run["cached"] == [] and run["wall_s"]["si2"] > 0
    assert json.loads(df.at[0, "kpts"]) == ref["kpts"]
    assert abs(df.at[0, "energy_per_atom_eV"] - ref["energy_per_atom_eV"]) < 1e-3
    again, run = run_batch([si], s, tmp_path)  # the result cache answers for the same geometry
    assert run["cached"] == ["si2"] and again.equals(df)
    strained = bulk("Si", "diamond", a=5.60)
    strained.info = {"structure_id": "si2"}  # same id, another geometry: computed afresh
    other, run = run_batch([strained], s, tmp_path)
    assert run["cached"] == [] and other.at[0, "energy_eV"] != df.at[0, "energy_eV"]


def test_gpaw_failing_job_is_marked_and_others_proceed(tmp_path):
    _gpaw_or_skip()
    from vitriflow.dft.gpaw_backend import GpawSettings, run_batch, run_one

    good = bulk("Si", "diamond", a=5.43)
    good.info = {"structure_id": "good"}
    # no PAW setup for X
    bad = Atoms("SiX", positions=[[0, 0, 0], [1.3, 1.3, 1.3]], cell=[5.43] * 3, pbc=True)
    bad.info = {"structure_id": "bad"}
    s = GpawSettings(ecut_eV=200, kpt_density=1.0)
    df = run_batch([bad, good], s, tmp_path, workers=1)[0].set_index("structure_id")
    assert df.at["bad", "status"] == "failed" and df.at["bad", "reason"]
    assert df.at["good", "status"] == "ok" and np.isfinite(df.at["good", "energy_eV"])
    # SCF non-convergence is a status, not an exception
    nc = run_one(good, GpawSettings(ecut_eV=200, kpt_density=1.0, maxiter=2))
    assert (nc["status"] == "failed" and "not converged" in nc["reason"]
            and np.isnan(nc["energy_eV"]))


# ---------------------------------------------------------------- GPAW stages without GPAW
FAKE_GPAW = """
import json, sys
from ase.io import read
from vitriflow.dft.gpaw_backend import GpawSettings
job = json.loads(open(sys.argv[-1]).read())
atoms = read(job["structure"], format="extxyz")
res = {"energy_eV": -5.0 * len(atoms), "status": "ok", "reason": "", "wall_s": 0.25,
       "settings_key": GpawSettings(**job["settings"]).key(), "input_key": job["input_key"]}
open(job["result"], "w").write(json.dumps(res))
"""


def _fake_gpaw_python(tmp_path) -> str:
    """An executable that stands in for ``python -m vitriflow.dft.gpaw_backend job.json``."""
    import sys

    exe = tmp_path / "fake-python"
    exe.write_text(f"#!{sys.executable}{FAKE_GPAW}")
    exe.chmod(0o755)
    return str(exe)


def test_gpaw_energy_table_is_the_same_for_fresh_and_cached_runs(tmp_path, monkeypatch):
    """Wall times and cache hits go to provenance: the table of a rerun equals the first one."""
    from functools import partial

    from vitriflow.dft import gpaw_backend, stage
    from vitriflow.io import read_table, write_structures

    frames = []
    for i in range(2):
        a = bulk("Si", "diamond", a=5.43 + 0.05 * i)
        a.info = {"structure_id": f"si{i}", "role": "amorphous"}
        frames.append(a)
    write_structures(frames, tmp_path / "sel.extxyz")
    monkeypatch.setattr(gpaw_backend, "gpaw_available", lambda: (True, "test"))
    monkeypatch.setattr(gpaw_backend, "run_batch",
                        partial(gpaw_backend.run_batch, python=_fake_gpaw_python(tmp_path)))
    tables = []
    for out in ("first.parquet", "again.parquet"):
        stage.gpaw_stage(tmp_path / "sel.extxyz", tmp_path / out, tmp_path / "jobs", _stage_cfg(),
                         threads=2)
        tables.append(read_table(tmp_path / out))
    (first, p1), (again, p2) = tables
    assert not {"wall_s", "cached"} & set(first.columns)
    assert first.equals(again) and list(first["status"]) == ["ok", "ok"]
    assert p1["cached"] == [] and sorted(p2["cached"]) == ["si0", "si1"]
    assert p1["wall_s"] == p2["wall_s"] and set(p1["wall_s"]) == {"si0", "si1"}


def _convergence_frames(tmp_path, elements=("Si", "O")):
    from vitriflow.io import write_structures

    am = Atoms("Si2O4", positions=np.random.default_rng(0).random((6, 3)) * 4, cell=[5, 5, 5],
               pbc=True)
    am.info = {"structure_id": "X-c0000-r00", "role": "amorphous"}
    frames = [am]
    for el in elements:
        ref = Atoms(f"{el}2", positions=[[0, 0, 0], [1.2, 0, 0]], cell=[6, 6, 6], pbc=True)
        ref.info = {"structure_id": f"X-el-{el}", "role": "element"}
        frames.append(ref)
    write_structures(frames, tmp_path / "sel.extxyz")
    return tmp_path / "sel.extxyz"


def _convergence_cfg():
    cfg = _stage_cfg()
    cfg["gpaw"].update(ecut_eV=500, convergence_ecuts_eV=[400, 600])
    return cfg


def _fake_run_batch(calls, fail=None):
    """run_batch stand-in: E/atom = -5 - 100/ecut; ``fail`` = (structure_id, ecut) that fails."""
    def run_batch(frames, settings, workdir, **kw):
        calls.append(settings.ecut_eV)
        rows = []
        for a in frames:
            sid = a.info["structure_id"]
            bad = (sid, settings.ecut_eV) == fail
            rows.append({"structure_id": sid, "n_atoms": len(a),
                         "status": "failed" if bad else "ok",
                         "reason": "SCF not converged in 300 iterations" if bad else "",
                         "energy_eV": (np.nan if bad else
                                       len(a) * (-5 - 100 / settings.ecut_eV - len(sid) / 100))})
        df = pd.DataFrame(rows)
        df["energy_per_atom_eV"] = df["energy_eV"] / df["n_atoms"]
        return df, {"wall_s": dict.fromkeys(df["structure_id"], 1.5), "cached": []}
    return run_batch


def test_convergence_check_without_an_elemental_reference_is_skipped_with_the_reason(
        tmp_path, monkeypatch):
    from vitriflow.dft import gpaw_backend
    from vitriflow.dft.stage import gpaw_convergence_stage
    from vitriflow.io import read_table

    calls = []
    monkeypatch.setattr(gpaw_backend, "gpaw_available", lambda: (True, "test"))
    monkeypatch.setattr(gpaw_backend, "run_batch", _fake_run_batch(calls))
    sel = _convergence_frames(tmp_path, elements=("Si",))
    gpaw_convergence_stage(sel, tmp_path / "conv.parquet", tmp_path / "work", _convergence_cfg(),
                           threads=1)
    table, prov = read_table(tmp_path / "conv.parquet")
    assert len(table) == 0 and calls == []  # no DFT spent on a check that cannot give E_f
    assert prov["skipped"].startswith("no elemental reference for O in the selection")


def test_convergence_check_keeps_a_setting_whose_reference_failed(tmp_path, monkeypatch):
    from vitriflow.dft import gpaw_backend
    from vitriflow.dft.stage import gpaw_convergence_stage, precision_statement
    from vitriflow.io import read_table

    calls = []
    monkeypatch.setattr(gpaw_backend, "gpaw_available", lambda: (True, "test"))
    monkeypatch.setattr(gpaw_backend, "run_batch", _fake_run_batch(calls, fail=("X-el-O", 500.0)))
    cfg = _convergence_cfg()
    gpaw_convergence_stage(_convergence_frames(tmp_path), tmp_path / "conv.parquet",
                           tmp_path / "work", cfg, threads=1)
    table, prov = read_table(tmp_path / "conv.parquet")
    assert sorted(calls) == [400, 500, 600] and "wall_s" not in table.columns
    assert prov["runs"]["ecut500_k2.5"]["wall_s"] == {"X-c0000-r00": 1.5, "X-el-Si": 1.5,
                                                      "X-el-O": 1.5}
    t = table.set_index("ecut_eV")
    assert (not t.at[500, "all_ok"] and np.isnan(t.at[500, "e_form_eV"])
            and np.isnan(t.at[500, "delta_e_form_meV"]))
    assert t.at[500, "reason"] == "X-el-O: SCF not converged in 300 iterations"
    assert t.loc[[400, 600], "all_ok"].all() and (t.loc[[400, 600], "reason"] == "").all()
    assert np.isfinite(t.loc[[400, 600], "e_form_eV"]).all() and t.at[600, "delta_e_form_meV"] == 0
    text = precision_statement("gpaw", cfg, table)
    assert "nan" not in text and "Some DFT jobs of the convergence check failed" in text


# ---------------------------------------------------------------- stage + report fragment
def _stage_cfg():
    from vitriflow.config import thaw, with_defaults

    return thaw(with_defaults("dft", {"backend": "gpaw", "n_per_system": 2}))  # tests change it


def test_compare_stage_writes_report_with_failed_jobs(tmp_path):
    from vitriflow.dft.stage import compare_stage
    from vitriflow.io import provenance, read_table, write_table

    sel, mlip, dft = _synthetic()
    cfg = _stage_cfg()
    # schema defaults applied
    assert cfg["gpaw"]["ecut_eV"] == 500 and cfg["molecule_box_A"] == 12.0
    paths = {k: tmp_path / f"{k}.parquet" for k in ("sel", "mlip", "dft")}
    write_table(sel, paths["sel"], provenance(stage="t", warnings=["X: test warning"]))
    write_table(mlip, paths["mlip"], provenance(stage="t"))
    write_table(dft, paths["dft"], provenance(stage="t"))
    out = tmp_path / "out"
    compare_stage(["X"], [paths["sel"]], [paths["mlip"]], [paths["dft"]], out / "cmp.parquet",
                  out / "summary.json", out / "50_dft.html", cfg, seed=1)
    html = (out / "50_dft.html").read_text()
    assert "X-am-3" in html and "SCF not converged" in html and "test warning" in html
    assert "<img" in html and "Total energies per atom are not compared" in html
    table, prov = read_table(out / "cmp.parquet")
    assert len(table) == 6 and prov["stage"] == "dft.compare"
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["n_dft_failed"] == 1 and summary["backend"] == "gpaw"
    # a skipped backend (GPAW not importable) gives a fragment that says why
    write_table(dft.assign(status="skipped", energy_eV=np.nan), paths["dft"],
                provenance(stage="t", skipped="GPAW cannot be imported (test)"))
    compare_stage(["X"], [paths["sel"]], [paths["mlip"]], [paths["dft"]], out / "cmp.parquet",
                  out / "summary.json", out / "50_dft.html", cfg, seed=1)
    assert "skipped: GPAW cannot be imported (test)" in (out / "50_dft.html").read_text()


def test_report_says_why_the_convergence_check_was_skipped(tmp_path):
    from vitriflow.dft.stage import CONVERGENCE_COLUMNS, compare_stage
    from vitriflow.io import provenance, write_table

    sel, mlip, dft = _synthetic()
    paths = {k: tmp_path / f"{k}.parquet" for k in ("sel", "mlip", "dft", "conv")}
    for k, df in (("sel", sel), ("mlip", mlip), ("dft", dft)):
        write_table(df, paths[k], provenance(stage="t"))
    why = "no elemental reference for O in the selection, so no formation energy of X-am-1"
    write_table(pd.DataFrame(columns=CONVERGENCE_COLUMNS), paths["conv"],
                provenance(stage="t", skipped=why))
    out = tmp_path / "out"
    compare_stage(["X"], [paths["sel"]], [paths["mlip"]], [paths["dft"]], out / "cmp.parquet",
                  out / "summary.json", out / "50_dft.html", _convergence_cfg(), seed=1,
                  convergence_paths=[paths["conv"]])
    html = (out / "50_dft.html").read_text()
    assert f"The convergence check was skipped (X: {why})" in html
    assert "No convergence check was run" not in html
    assert why in json.loads((out / "summary.json").read_text())["summary"]["precision"]


def test_one_bad_frame_fails_only_its_own_mlip_single_point():
    from vitriflow.dft.mlip import mlip_energies

    frames = []
    for i, a in enumerate((5.0, 5.2, 5.4)):
        c = Atoms("SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [0, 1.6, 0]], cell=[a] * 3, pbc=True)
        c.info = {"structure_id": f"ok{i}"}
        frames.append(c)
    flat = frames[0].copy()
    flat.cell[2] = [0, 0, 0]  # a collapsed cell: the batch cannot be built with it
    flat.info = {"structure_id": "flat"}
    df = mlip_energies([frames[0], flat, *frames[1:]], "teter").set_index("structure_id")
    assert df.at["flat", "status"] == "failed" and df.at["flat", "reason"].startswith("MLIP teter:")
    assert (df.loc[["ok0", "ok1", "ok2"], "status"] == "ok").all()
    assert df.loc[["ok0", "ok1", "ok2"], "energy_eV"].nunique() == 3


# ---------------------------------------------------------------- config checked at workflow start
def test_table_backend_without_its_file_is_a_config_error(tmp_path):
    from vitriflow.dft import check_dft_config

    cfg = _stage_cfg()
    check_dft_config(cfg)  # gpaw: no table needed
    cfg["backend"] = "table"
    with pytest.raises(ValueError, match=r"^dft\.table\.path: required when dft\.backend is "
                                         r"'table'; expected a CSV"):
        check_dft_config(cfg)
    cfg["table"]["path"] = str(tmp_path / "energies.xlsx")
    with pytest.raises(ValueError, match=r"^dft\.table\.path: .*energies\.xlsx' must end in "
                                         r"\.csv or \.parquet"):
        check_dft_config(cfg)
    cfg["table"]["path"] = str(tmp_path / "energies.csv")
    with pytest.raises(ValueError, match=r"^dft\.table\.path: .*energies\.csv' does not exist"):
        check_dft_config(cfg)
    (tmp_path / "energies.csv").write_text("structure_id,energy_eV\n")
    check_dft_config(cfg)


def _snakemake_config(dft: dict) -> dict:
    """The demo config cut to one small classical system and the given ``dft`` section."""
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for stage in ("analysis", "properties", "dft", "forcefield_fit", "viscosity", "dissolution",
                  "pcf", "gnn"):
        cfg.pop(stage, None)
    cfg["references"] = {"snapshot": False}
    cfg["systems"] = [{"name": "s", "compositions": ["SiO2"], "atoms_per_cell": 48,
                       "potential": "teter", "protocol": "demo_classical"}]
    cfg["dft"] = dft
    return cfg


def test_snakemake_refuses_table_backend_without_path_at_start(tmp_path):
    import subprocess
    import sys

    import yaml

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_snakemake_config({"backend": "table"})))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                           str(tmp_path / "bad.yaml")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "vitriflow config error" in ln]
    assert lines == ["vitriflow config error: dft.table.path: required when dft.backend is "
                     "'table'; expected a CSV or Parquet file of DFT energies "
                     "(docs/dft.md)"], proc.stderr[-2000:]


def test_snakemake_reruns_dft_table_when_the_energy_file_changes(tmp_path):
    """After a completed run (outputs stood in by --touch), editing dft.table.path
    schedules dft_table."""
    import re
    import subprocess
    import sys
    import time

    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(_snakemake_config(
        {"backend": "table", "table": {"path": "energies.csv"}})))
    energies = tmp_path / "energies.csv"
    energies.write_text("structure_id,energy_eV\n")

    def snakemake(*args):
        proc = subprocess.run([sys.executable, "-m", "snakemake",
                               "results/dft/s/table/energies.parquet",
                               "--snakefile", str(REPO / "Snakefile"),
                               "--directory", str(tmp_path), "--cores", "1", *args,
                               "--configfile", str(tmp_path / "c.yaml")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout + proc.stderr

    # every file of the DAG, as a completed run leaves it
    for line in snakemake("--summary").splitlines()[1:]:
        out = tmp_path / line.split("\t")[0]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch()
    snakemake("--touch")  # in DAG order, recording Snakemake's metadata
    assert "Nothing to be done" in snakemake("-n")
    energies.write_text("structure_id,energy_eV\ns-el-Si,-5.4\n")
    later = time.time() + 10
    os.utime(energies, (later, later))
    dry = snakemake("-n")
    assert re.findall(r"^rule (\w+):", dry, re.MULTILINE) == ["dft_table"], dry[-2000:]
    assert "Updated input files: energies.csv" in dry
