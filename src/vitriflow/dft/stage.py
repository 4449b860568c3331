"""Stage functions behind the Snakemake scripts (file in, file out; all logic testable here)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from vitriflow.io import (
    provenance,
    read_structures,
    read_table,
    write_json,
    write_structures,
    write_table,
)

log = logging.getLogger(__name__)


def select_stage(system: str, quenched_path, references_path, crystals_path, out_frames, out_table,
                 cfg: Mapping, seed: int) -> None:
    """Selection of one system -> ``selection.extxyz`` + ``selection.parquet``."""
    from vitriflow.dft.selection import build_selection, selection_table

    quenched = read_structures(quenched_path)
    refs = (read_table(references_path)[0] if references_path and Path(references_path).is_file()
            else None)
    crystals = (read_structures(crystals_path) if crystals_path and Path(crystals_path).is_file()
                else [])
    frames, warnings = build_selection(
        system, quenched, refs, crystals, n_per_system=cfg["n_per_system"], seed=seed,
        failure_neighbours=cfg["failure_neighbours"], include_failed=cfg["include_failed"],
        include_crystals=cfg["include_crystals"], max_atoms=cfg["max_atoms"],
        max_crystal_atoms=cfg["max_crystal_atoms"], molecule_box_A=cfg["molecule_box_A"],
    )
    for w in warnings:
        log.warning(w)
    write_structures(frames, out_frames)
    prov = provenance(stage="dft.select", config=cfg,
                      inputs=[quenched_path, references_path, crystals_path], seed=seed,
                      warnings=warnings)
    write_table(selection_table(frames), out_table, prov)


def mlip_stage(frames_path, out_path, cfg: Mapping, device: str) -> None:
    from vitriflow.dft.mlip import mlip_energies, resolve_potential

    frames = read_structures(frames_path)
    name = resolve_potential(frames, cfg["mlip"])
    df = mlip_energies(frames, name, device=device)
    write_table(df, out_path,
                provenance(stage="dft.mlip", config=cfg, inputs=[frames_path], potential=name))


def gpaw_settings(cfg: Mapping):
    from vitriflow.dft.gpaw_backend import GpawSettings

    g = cfg["gpaw"]
    return GpawSettings(ecut_eV=g["ecut_eV"], kpt_density=g["kpt_density"],
                        kpt_density_amorphous=g["kpt_density_amorphous"], spin=g["spin"],
                        smearing=g["smearing"], smearing_width_eV=g["smearing_width_eV"],
                        hubbard_u=g["hubbard_u"], maxiter=g["maxiter"],
                        energy_tol_eV=g["energy_tol_eV"], timeout_s=g["timeout_s"])


def gpaw_stage(frames_path, out_path, workdir, cfg: Mapping, threads: int) -> None:
    """GPAW energies of every selected frame, or an all-'skipped' table saying why
    GPAW cannot run."""
    from vitriflow.dft.gpaw_backend import gpaw_available, run_batch

    frames = read_structures(frames_path)
    ok, info = gpaw_available()
    settings = gpaw_settings(cfg)
    if not ok:
        log.error("GPAW unavailable: %s", info)
        df = pd.DataFrame({"structure_id": [a.info["structure_id"] for a in frames],
                           "n_atoms": [len(a) for a in frames], "energy_eV": np.nan,
                           "status": "skipped", "reason": info})
        write_table(df, out_path,
                    provenance(stage="dft.gpaw", config=cfg, inputs=[frames_path], skipped=info))
        return
    mpi = cfg["gpaw"]["mpi_command"]
    workers = 1 if mpi else max(1, threads)
    # biggest first so the pool finishes together
    order = sorted(frames, key=lambda a: -len(a))
    df, run = run_batch(order, settings, workdir, workers=workers, threads_per_worker=1,
                        mpi_command=mpi)
    sid_order = {str(a.info["structure_id"]): i for i, a in enumerate(frames)}
    df = df.sort_values("structure_id", key=lambda s: s.map(sid_order)).reset_index(drop=True)
    # wall times and cache hits vary from run to run: provenance, not table columns
    write_table(df, out_path,
                provenance(stage="dft.gpaw", config=cfg, inputs=[frames_path], gpaw=info,
                           settings=settings.__dict__, workers=workers, **run))


CONVERGENCE_COLUMNS = ["structure_id", "ecut_eV", "kpt_density", "e_total_eV_atom", "e_form_eV",
                       "all_ok", "reason", "delta_e_form_meV"]


def gpaw_convergence_stage(frames_path, out_path, workdir, cfg: Mapping, threads: int) -> None:
    """Formation energy of the first amorphous frame vs cutoff and k-point density.

    Skipped (empty table, the reason in provenance) when GPAW is missing, there is nothing to
    check, or an element of the target has no elemental reference frame. A failed job at one
    setting gives that row e_form NaN, ``all_ok`` False and the failed jobs' reasons.
    """
    from dataclasses import replace

    from vitriflow.dft.gpaw_backend import gpaw_available, run_batch

    frames = read_structures(frames_path)
    g = cfg["gpaw"]
    base = gpaw_settings(cfg)
    ok, info = gpaw_available()
    am = [a for a in frames if a.info["role"] == "amorphous"]
    if not ok:
        why = info
    elif not am or not (g["convergence_ecuts_eV"] or g["convergence_kpt_densities"]):
        why = "no amorphous structure or no convergence grid"
    else:
        target = min(am, key=lambda a: (len(a), a.info["structure_id"]))
        syms = target.get_chemical_symbols()
        refs = {a.get_chemical_symbols()[0]: a for a in frames
                if a.info["role"] == "element" and set(a.get_chemical_symbols()) <= set(syms)}
        missing = sorted(set(syms) - set(refs))
        why = (f"no elemental reference for {', '.join(missing)} in the selection, so no formation "
               f"energy of {target.info['structure_id']}") if missing else ""
    if why:
        log.warning("convergence check skipped: %s", why)
        write_table(pd.DataFrame(columns=CONVERGENCE_COLUMNS), out_path,
                    provenance(stage="dft.gpaw.convergence", config=cfg, inputs=[frames_path],
                               skipped=why))
        return
    tid = target.info["structure_id"]
    grid = [(e, base.kpt_density) for e in g["convergence_ecuts_eV"]]
    grid += [(base.ecut_eV, k) for k in g["convergence_kpt_densities"]]
    grid = sorted(set(grid) | {(base.ecut_eV, base.kpt_density)})
    rows, runs = [], {}
    for ecut, kd in grid:
        s = replace(base, ecut_eV=float(ecut), kpt_density=float(kd))
        label = f"ecut{ecut:g}_k{kd:g}"
        df, runs[label] = run_batch([target, *refs.values()], s, Path(workdir) / label,
                                    workers=max(1, threads))
        df = df.set_index("structure_id")
        e = df["energy_per_atom_eV"].where(df["status"] == "ok")  # NaN for failed jobs
        failed = df[df["status"] != "ok"]
        rows.append({"structure_id": tid, "ecut_eV": ecut, "kpt_density": kd,
                     "e_total_eV_atom": e[tid],
                     "e_form_eV": e[tid] - sum(e[refs[el].info["structure_id"]]
                                               for el in syms) / len(syms),
                     "all_ok": failed.empty,
                     "reason": "; ".join(f"{sid}: {r}"
                                         for sid, r in failed["reason"].fillna("").items())})
    out = pd.DataFrame(rows)
    tight = out[(out["ecut_eV"] == out["ecut_eV"].max())
                & (out["kpt_density"] == out["kpt_density"].max())]
    ref = tight.iloc[0] if len(tight) else out.iloc[out["ecut_eV"].argmax()]
    out["delta_e_form_meV"] = 1000 * (out["e_form_eV"] - ref["e_form_eV"])
    # wall times and cache hits vary from run to run: provenance, not table columns
    write_table(out, out_path,
                provenance(stage="dft.gpaw.convergence", config=cfg, inputs=[frames_path],
                           runs=runs))


def vasp_inputs_stage(frames_path, out_path, root, cfg: Mapping) -> None:
    from vitriflow.dft.vasp_backend import write_jobs

    frames = read_structures(frames_path)
    v = cfg["vasp"]
    jobs = write_jobs(frames, root, kind=v["input_set"],
                      user_incar_settings=v["user_incar_settings"])
    write_table(jobs, out_path,
                provenance(stage="dft.vasp.inputs", config=cfg, inputs=[frames_path]))


def vasp_run_stage(jobs_path, out_path, root, cfg: Mapping) -> None:
    from vitriflow.dft.vasp_backend import run_jobs

    df, run = run_jobs(root, timeout_s=cfg["vasp"]["timeout_s"])
    # which jobs ran now and their wall times vary from run to run: provenance, not table columns
    write_table(df, out_path, provenance(stage="dft.vasp.run", config=cfg, inputs=[jobs_path],
                                         vasp_command=os.environ.get("VASP_COMMAND", ""), **run))


def vasp_parse_stage(run_path, out_path, root, cfg: Mapping) -> None:
    from vitriflow.dft.vasp_backend import parse_jobs

    df = parse_jobs(root, mp2020=cfg["vasp"]["mp2020"])
    write_table(df, out_path, provenance(stage="dft.vasp.parse", config=cfg, inputs=[run_path]))


def table_stage(selection_path, out_path, cfg: Mapping) -> None:
    from vitriflow.dft.checks import check_dft_config
    from vitriflow.dft.table_backend import energies_from_table, read_energy_table

    check_dft_config({**cfg, "backend": "table"})
    path = cfg["table"]["path"]
    sel = read_table(selection_path)[0]
    df = energies_from_table(read_energy_table(path), sel, source=str(path))
    write_table(df, out_path,
                provenance(stage="dft.table", config=cfg, inputs=[selection_path, path]))


def settings_brief(backend: str, cfg: Mapping, df: pd.DataFrame) -> str:
    """The DFT settings a reader needs beside an error, e.g. 'GPAW PBE, Γ-only, 400 eV, 12-atom
    cells'."""
    sizes = sorted({int(n) for n in df.loc[df["role"] == "amorphous", "n_atoms"]})
    cells = (f"{sizes[0]}-atom cells" if len(sizes) == 1
             else f"{sizes[0]}-{sizes[-1]}-atom cells" if sizes else "no amorphous cells")
    if backend == "gpaw":
        g = cfg["gpaw"]
        ka = g["kpt_density_amorphous"]
        kpts = ("Γ-only" if ka == 0
                else f"k-point density {ka if ka is not None else g['kpt_density']:g}/Å⁻¹")
        return f"GPAW PBE, {kpts}, {g['ecut_eV']:g} eV, {cells}"
    if backend == "vasp":
        return f"VASP, pymatgen {cfg['vasp']['input_set']} (MP-compatible), {cells}"
    return f"energies from {cfg['table']['path']}, {cells}"


def precision_statement(backend: str, cfg: Mapping, convergence: pd.DataFrame | None,
                        convergence_skipped: Sequence[str] = ()) -> str:
    """An honest sentence on what the DFT numbers can resolve (``convergence_skipped``: why the
    convergence check did not run, one 'system: reason' per system)."""
    skipped = "; ".join(convergence_skipped)
    if backend == "gpaw":
        g = cfg["gpaw"]
        ka = g.get("kpt_density_amorphous")
        kam = "" if ka is None else (" (amorphous cells: Gamma only, which cost 8-29 meV/atom on "
                                     "12-24-atom SiO2 cells, docs/dft.md)"
                                     if ka == 0 else f" (amorphous cells: {ka:g})")
        text = (f"GPAW PW-PBE single points at {g['ecut_eV']:g} eV, {g['kpt_density']:g} "
                f"k-points/Å⁻¹{kam}, {g['smearing']} {g['smearing_width_eV']:g} eV, spin "
                f"{g['spin']}, DFT+U {'on' if g['hubbard_u'] else 'off'}. GPAW PAW setups are not "
                "VASP POTCARs: formation energies differ from MP's by tens of meV/atom for reasons "
                "unrelated to the MLIP, and no MP2020 anion corrections are applied.")
        if convergence is not None and len(convergence):
            worst = convergence.loc[convergence["ecut_eV"] == cfg["gpaw"]["ecut_eV"],
                                    "delta_e_form_meV"].abs()
            if worst.notna().any():
                text += (f" Convergence check: formation energy at the chosen settings is within "
                         f"{worst.max():.1f} meV/atom of the tightest settings tried.")
            if not convergence["all_ok"].all():
                text += " Some DFT jobs of the convergence check failed (reasons in its table)."
            if skipped:
                text += f" Convergence check skipped for {skipped}."
        elif skipped:
            text += (f" The convergence check was skipped ({skipped}); see docs/dft.md for "
                     "measured errors.")
        else:
            text += (" No convergence check was run with these settings (see docs/dft.md for "
                     "measured errors).")
        return text
    if backend == "vasp":
        return (f"VASP with pymatgen's MP {cfg['vasp']['input_set']} input set (ENCUT 520 eV, PREC "
                "Accurate, MP POTCARs, GGA+U per MP), MP2020 corrections "
                f"{'on' if cfg['vasp']['mp2020'] else 'off'}.")
    return "User-supplied DFT energies; their settings and precision are the supplier's."


def compare_stage(systems: Sequence[str], selection_paths, mlip_paths, dft_paths, out_table,
                  out_summary, out_section, cfg: Mapping, seed: int,
                  convergence_paths: Sequence = ()) -> None:
    """Merge all systems, compute errors, write the comparison table, summary JSON and report."""
    from vitriflow.dft.compare import compute_energies, merge_energies, summarize
    from vitriflow.dft.report import write_dft_section, write_skipped

    backend = cfg["backend"]
    sels, mls, dfs, warnings, skipped = [], [], [], [], []
    for sp, mp_, dp in zip(selection_paths, mlip_paths, dft_paths, strict=True):
        sel, sprov = read_table(sp)
        sels.append(sel)
        warnings += sprov.get("warnings", [])
        mls.append(read_table(mp_)[0])
        d, dprov = read_table(dp)
        if dprov.get("skipped"):
            skipped.append(dprov["skipped"])
        dfs.append(d)
    sel = pd.concat(sels, ignore_index=True)
    merged = merge_energies(sel, pd.concat(mls, ignore_index=True),
                            pd.concat(dfs, ignore_index=True))
    include_total = (backend == "vasp"
                     or (backend == "table" and cfg["table"]["energies_on_mlip_scale"]))
    df = compute_energies(merged)
    summary = summarize(df, include_total, seed=seed)
    summary["backend"] = backend
    summary["systems"] = list(systems)
    conv, conv_skipped = [], []
    # one convergence table per system when the check is configured, none otherwise
    for system, p in zip(systems, convergence_paths, strict=bool(convergence_paths)):
        c, cprov = read_table(p)
        conv.append(c)
        if cprov.get("skipped"):  # an empty table: the reason is in its provenance only
            conv_skipped.append(f"{system}: {cprov['skipped']}")
    conv_df = (pd.concat([c for c in conv if len(c)], ignore_index=True)
               if any(len(c) for c in conv) else None)
    summary["precision"] = precision_statement(backend, cfg, conv_df, conv_skipped)
    prov = provenance(stage="dft.compare", config=cfg,
                      inputs=[*selection_paths, *mlip_paths, *dft_paths], seed=seed)
    write_table(df, out_table, prov)
    summary["settings_brief"] = settings_brief(backend, cfg, df)
    write_json({"summary": summary, "provenance": prov}, out_summary)
    if skipped:
        write_skipped(out_section, skipped[0])
        return
    settings = {"backend": backend,
                **{f"{backend}.{k}": v for k, v in cfg.get(backend, {}).items()},
                "mlip": cfg["mlip"], "n_per_system": cfg["n_per_system"], "seed": seed}
    write_dft_section(out_section, df, summary, settings, summary["precision"], warnings, conv_df)
