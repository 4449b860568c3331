"""Turn what the device run returned ($OUT of benchmarks/gpu_pack/run_on_device.sh) into results.

    python benchmarks/gpu_results.py OUT [OUT ...] [--work benchmarks/out/gpu_results]
        [--dft full|quick|skip] [--dft-systems a,b] [--threads N] [--markdown FILE]

Several OUT folders (a first run and a rerun of a part that did not finish) are merged: each
part is taken from the last folder in which it ended ok (else the last that has it). Then, on
this CPU machine:

1. the throughput table (atom-steps/s and peak GPU memory per path, batch size and
   cuEquivariance setting, with the same run's ratios batched/ASE and cuEq/plain);
2. the silica table: ``benchmarks/gpu_validation.py``'s analysis of the returned structures
   (vitriflow.analysis, averaged over the kept anneal frames; R_chi against the NIMROD F(Q),
   dataset ``nimrod_silica_fq`` via the data mirror or cache);
3. the DFT validation of the returned amorphous structures through the workflow's own stages
   (``vitriflow.dft.stage``: selection, SevenNet-0 single points, GPAW single points and, as
   configured, the cutoff/k-point check, comparison), with the MLIP - DFT formation-energy and
   ΔE_am MAE per chemistry class beside Aykol et al.'s Table 1. GPAW jobs are cached per
   structure in ``--work``, so an interrupted run resumes. ``--dft quick`` is a smoke test
   (one structure per system, 200 eV, Γ-only amorphous cells, no crystals): not a result.

The tables are printed as Markdown (ready for docs/results.md) and written to ``--markdown``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import sys
import tarfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PARTS = ("throughput", "silica", "dftval")
log = logging.getLogger("vitriflow.gpu_results")
#: --dft quick: GPAW and selection settings of the smoke test
QUICK_DFT = {"n_per_system": 1, "failure_neighbours": False, "include_crystals": False}
QUICK_GPAW = {"ecut_eV": 200, "kpt_density": 1.0, "kpt_density_amorphous": 0, "maxiter": 200,
              "convergence_ecuts_eV": [], "convergence_kpt_densities": []}
SILICA_COLUMNS = (("density_g_cm3", "density (g/cm³)"), ("rpeak_O_Si", "Si–O peak of g(r) (Å)"),
                  ("cn_Si_O", "CN Si–O"), ("angle_mode_O_Si_O_deg", "O–Si–O angle mode (°)"),
                  ("angle_mode_Si_O_Si_deg", "Si–O–Si angle mode (°)"),
                  ("rchi_fq_exp", "R_χ vs NIMROD F(Q)"),
                  ("analysed_frames", "frames averaged per structure"))


class ResultsError(RuntimeError):
    """Returned files that cannot be turned into results (one line naming the file)."""


# ----------------------------------------------------------------------------- collecting
def _status(folder: Path) -> dict:
    path = folder / "status.json"
    return json.loads(path.read_text()) if path.is_file() else {"status": "no status.json"}


def collect(outs: list[Path], work: Path) -> dict:
    """Unpack every part archive of every OUT folder; per part, the chosen folder and status.
    Returns ``{part: {"dir", "status", "from"} | None, "env": dict, "runs": [...]}``."""
    found: dict = {part: [] for part in PARTS}
    env: dict = {}
    shutil.rmtree(work / "returned", ignore_errors=True)  # nothing left from an earlier call
    for k, out in enumerate(outs):
        if not out.is_dir():
            raise ResultsError(f"{out}: no such folder; expected the device run's $OUT")
        if (out / "env.json").is_file():
            env = json.loads((out / "env.json").read_text())
        for part in PARTS:
            archive = out / f"{part}.tar.gz"
            if not archive.is_file():
                continue
            dest = work / "returned" / f"{k:02d}"
            try:
                with tarfile.open(archive) as tf:
                    tf.extractall(dest, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise ResultsError(f"{archive}: cannot unpack ({exc})") from None
            found[part].append((dest / part, _status(dest / part), out))
    if not any(found.values()):
        raise ResultsError(f"{', '.join(map(str, outs))}: no part archives (throughput.tar.gz, "
                           "silica.tar.gz, dftval.tar.gz); expected run_on_device.sh's $OUT")
    chosen: dict = {"env": env}
    for part, runs in found.items():
        ok = [r for r in runs if r[1].get("status") == "ok"]
        pick = (ok or runs or [None])[-1]
        chosen[part] = None if pick is None else {"dir": pick[0], "status": pick[1],
                                                  "from": str(pick[2])}
    return chosen


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _part_note(name: str, entry: dict | None) -> str:
    if entry is None:
        return f"*{name}: not in the returned files.*"
    s = entry["status"]
    why = s.get("reason") or s.get("error") or ""
    progress = s.get("progress")
    extra = f"; progress at the stop: {json.dumps(progress)}" if progress else ""
    return f"*{name}: {s.get('status')} after {s.get('wall_s', '?')} s {why}{extra}.*"


def _device_line(env: dict) -> str:
    gpu = env.get("gpu") or {}
    device = (f"{gpu['name']} ({gpu['memory_GB']} GB)" if gpu else
              f"{env.get('device', '?')}").strip()
    pk = env.get("packages", {})
    return (f"{device}; torch {env.get('torch', '?')} (CUDA {env.get('cuda') or '—'}), "
            f"torch-sim {pk.get('torch-sim-atomistic', '?')}, sevenn {pk.get('sevenn', '?')}, "
            f"cuEquivariance {pk.get('cuequivariance-torch', 'not installed')}; neighbour list "
            f"{env.get('neighbour_list', '?')}; on-device checks: {env.get('checks', {})}")


# ----------------------------------------------------------------------------- throughput
def throughput_table(entry: dict | None, env: dict) -> str:
    if entry is None or not (entry["dir"] / "throughput.jsonl").is_file():
        return "### Throughput\n\n" + _part_note("throughput", entry) + "\n"
    rows = [json.loads(line) for line in
            (entry["dir"] / "throughput.jsonl").read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    ase = {r["cueq"]: r["atom_steps_per_s"] for r in rows if r["path"] == "ase"}
    plain = {(r["path"], r["systems"]): r["atom_steps_per_s"] for r in rows if not r["cueq"]}
    atoms = int(df.loc[df["path"] == "ase", "atoms"].iloc[0]) if (df["path"] == "ase").any() \
        else int(df["atoms"].iloc[0] // df["systems"].iloc[0])
    head = (f"### Throughput\n\nSevenNet-0, NVT (Nose–Hoover, 2 fs) at 3000 K on random SiO2 "
            f"cells of {atoms} atoms; {_device_line(env)}. One run; ratios are against the same "
            "run's ASE baseline (same cuEquivariance setting) and plain path.\n")
    lines = ["| path | cuEquivariance | cells per batch | atoms | atom-steps/s | × ASE | "
             "cuEq / plain | peak GPU memory (GB) | note |", "|---" * 9 + "|"]
    for r in rows:
        rate = r.get("atom_steps_per_s", float("nan"))
        base = ase.get(r["cueq"])
        vs_ase = rate / base if base else float("nan")
        vs_plain = rate / plain[(r["path"], r["systems"])] if r["cueq"] and plain.get(
            (r["path"], r["systems"])) else float("nan")
        path = "ASE calculator, one cell at a time" if r["path"] == "ase" else "torch-sim batched"
        lines.append(f"| {path} | {'on' if r['cueq'] else 'off'} | {r['systems']} | {r['atoms']} | "
                     f"{_fmt(rate)} | {_fmt(vs_ase, 2)} | {_fmt(vs_plain, 2)} | "
                     f"{_fmt(r.get('peak_gpu_memory_GB'), 2)} | {r.get('note', '')} |")
    tail = "" if entry["status"].get("status") == "ok" else "\n" + _part_note("throughput", entry)
    return head + "\n" + "\n".join(lines) + "\n" + tail


# ----------------------------------------------------------------------------- silica
def _dataset(key: str, cache_dir: Path, mirror: str | None) -> tuple[str | None, str]:
    from vitriflow.datasets import DatasetError, fetch

    try:
        return str(fetch(key, cache_dir, mirror)), ""
    except DatasetError as exc:
        return None, str(exc)


def silica_table(entry: dict | None, cache_dir: Path, mirror: str | None) -> tuple[str, dict]:
    """gpu_validation.py's analysis of the returned silica structures, as Markdown."""
    if entry is None or not (entry["dir"] / "quenched.extxyz").is_file():
        return "### Silica\n\n" + _part_note("silica", entry) + "\n", {}
    from collections import defaultdict

    from vitriflow.analysis import AnalysisSettings, analyze_system
    from vitriflow.glass_density import SILICA_DENSITY_G_CM3
    from vitriflow.io import read_structures

    d, s = entry["dir"], entry["status"]
    final = read_structures(d / "quenched.extxyz")
    samples = read_structures(d / "samples.extxyz") if (d / "samples.extxyz").is_file() else []
    by_structure = defaultdict(list)
    for a in samples:
        by_structure[a.info["structure_id"]].append(a)
    fq, fq_why = _dataset("nimrod_silica_fq", cache_dir, mirror)
    b, _ = _dataset("neutron_scattering_lengths", cache_dir, mirror)
    settings = AnalysisSettings.from_config({"experimental_fq": fq, "scattering_lengths": b})
    potential = s.get("potential", "sevennet-0")
    props = analyze_system(final, settings, f"sio2_{potential}", samples=by_structure).properties
    ok = props[props["status"] == "ok"]
    stages = ", ".join(f"{st['name']} {st['steps']:,} steps" for st in s.get("stages", []))
    speed = ("resumed from a checkpoint, so no rate" if s.get("resumed") else
             f"{_fmt(s.get('atom_steps_per_s'))} atom-steps/s including checkpoints, guard and "
             "relaxation")
    beside = f", run beside the {s['ran_beside']} part" if s.get("ran_beside") else ""
    head = (f"### Silica\n\n{len(final)} × {s.get('atoms', 0) // max(1, len(final))}-atom SiO2, "
            f"{potential}, benchmarks/gpu_validation.py's protocol ({stages}; 2 fs; FIRE); "
            f"{len(ok)}/{len(final)} structures ok; MD {_fmt(s.get('md_wall_s'))} s, {speed} "
            f"(cuEquivariance {'on' if s.get('cueq') else 'off'}{beside}). Structure averaged "
            "over the kept anneal frames.\n")
    lines = ["| quantity | mean | sd | vitreous silica |", "|---|---|---|---|"]
    summary = {}
    for col, label in SILICA_COLUMNS:
        vals = ok[col].dropna() if col in ok else pd.Series(dtype=float)
        mean = float(vals.mean()) if len(vals) else float("nan")
        sd = float(vals.std()) if len(vals) > 1 else float("nan")
        summary[col] = {"mean": mean, "sd": sd, "n": int(len(vals))}
        ref = f"{SILICA_DENSITY_G_CM3:.2f}" if col == "density_g_cm3" else "—"
        lines.append(f"| {label} | {_fmt(mean, 4)} | {_fmt(sd, 2)} | {ref} |")
    notes = [] if fq else [f"R_χ not computed: {fq_why}"]
    if s.get("status") != "ok":
        notes.append(_part_note("silica", entry))
    return head + "\n" + "\n".join(lines) + "\n" + "".join(f"\n{n}\n" for n in notes), summary


# ----------------------------------------------------------------------------- DFT
def dft_config(config: Path, mode: str) -> tuple[dict, int, list[str]]:
    """The config's dft section (schema defaults filled in), its seed and systems; ``quick``
    replaces the selection and GPAW settings with the smoke-test ones."""
    import yaml

    from vitriflow.config import load_config, thaw

    settings = load_config(yaml.safe_load(config.read_text()), base_dir=REPO)
    if not settings.enabled("dft"):
        raise ResultsError(f"{config}: no 'dft' section; expected config/dft_validation.yaml")
    cfg = thaw(settings.section("dft"))
    if cfg["backend"] != "gpaw":
        raise ResultsError(f"{config}: dft.backend is {cfg['backend']!r}; this comparison runs "
                           "GPAW (expected 'gpaw')")
    if mode == "quick":
        cfg.update(QUICK_DFT)
        cfg["gpaw"].update(QUICK_GPAW)
    return cfg, int(settings.derived["dft"]["seed"]), list(settings.derived["dft"]["systems"])


def dft_comparison(entry: dict | None, work: Path, config: Path, mode: str,
                   systems: list[str] | None, threads: int) -> tuple[str, dict]:
    """Selection, MLIP and GPAW single points and comparison with vitriflow.dft.stage; the MAE
    table per chemistry as Markdown, and the summary."""
    if mode == "skip":
        return "### DFT validation\n\n*skipped (--dft skip).*\n", {}
    if entry is None or not any(entry["dir"].glob("*/quenched.extxyz")):
        return "### DFT validation\n\n" + _part_note("dftval", entry) + "\n", {}
    from vitriflow.dft.compare import error_table
    from vitriflow.dft.stage import (
        compare_stage,
        gpaw_convergence_stage,
        gpaw_stage,
        mlip_stage,
        select_stage,
        settings_brief,
    )
    from vitriflow.io import read_table

    cfg, seed, configured = dft_config(config, mode)
    src = entry["dir"]
    names = [n for n in configured if (src / n / "quenched.extxyz").is_file()]
    if systems:
        unknown = sorted(set(systems) - set(names))
        if unknown:
            raise ResultsError(f"--dft-systems: {unknown[0]!r} is not among the returned "
                               f"systems {names}")
        names = [n for n in names if n in systems]
    convergence = bool(cfg["gpaw"]["convergence_ecuts_eV"] or
                       cfg["gpaw"]["convergence_kpt_densities"])
    paths: dict[str, list] = {"sel": [], "mlip": [], "dft": [], "conv": []}
    for name in names:
        d = work / "dft" / name
        (d / "gpaw").mkdir(parents=True, exist_ok=True)
        log.info("%s: selection, MLIP and GPAW single points", name)
        select_stage(name, src / name / "quenched.extxyz", src / name / "references.parquet",
                     src / name / "crystals.extxyz", d / "selection.extxyz",
                     d / "selection.parquet", cfg, seed)
        mlip_stage(d / "selection.extxyz", d / "mlip.parquet", cfg, cfg["device"])
        gpaw_stage(d / "selection.extxyz", d / "gpaw" / "energies.parquet", d / "gpaw" / "jobs",
                   cfg, threads)
        paths["sel"].append(d / "selection.parquet")
        paths["mlip"].append(d / "mlip.parquet")
        paths["dft"].append(d / "gpaw" / "energies.parquet")
        if convergence:
            gpaw_convergence_stage(d / "selection.extxyz", d / "gpaw" / "convergence.parquet",
                                   d / "gpaw" / "convergence", cfg, threads)
            paths["conv"].append(d / "gpaw" / "convergence.parquet")
    out = work / "dft"
    compare_stage(names, paths["sel"], paths["mlip"], paths["dft"], out / "comparison.parquet",
                  out / "summary.json", out / "section.html", cfg, seed,
                  convergence_paths=paths["conv"])
    df = read_table(out / "comparison.parquet")[0]
    summary = json.loads((out / "summary.json").read_text())["summary"]
    table = error_table(df, include_total=False)
    n_am = int(((df["role"] == "amorphous") & (df["dft_status"] == "ok")).sum())
    head = "### DFT validation\n\n"
    if mode == "quick":
        head += ("**Quick smoke settings (one structure per system, 200 eV, Γ-only amorphous "
                 "cells, no crystals): not a result.**\n\n")
    head += (f"SevenNet-0 − DFT ({settings_brief('gpaw', cfg, df)}) on {n_am} amorphous "
             f"structure(s) of {len(names)} system(s) with DFT energies (meV/atom; formation "
             "energies against chemical potentials fitted to the Materials Project's formation "
             "energies of the same run's crystals and elements; ΔE_am against each method's own "
             "hull). Aykol et al. (2023), Table 1: 38 meV/atom overall, 45 for oxides.\n")
    lines = ["| chemistry | n | MAE formation energy | ME formation energy | MAE ΔE_am | "
             "ME ΔE_am | Aykol et al. Table 1 MAE |", "|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['chemistry']} | {r['n']} | {_fmt(r['MAE formation energy'])} | "
                     f"{_fmt(r['ME formation energy'])} | {_fmt(r['MAE ΔE_am'])} | "
                     f"{_fmt(r['ME ΔE_am'])} | {_fmt(r['paper MAE (Table 1)'])} |")
    tail = [f"\n{summary.get('precision', '')}\n"]
    if summary.get("n_dft_failed"):
        tail.append(f"\n{summary['n_dft_failed']} DFT job(s) failed: "
                    f"{', '.join(summary['failed_ids'])}.\n")
    if entry["status"].get("status") != "ok":
        tail.append("\n" + _part_note("dftval", entry) + "\n")
    return head + "\n" + "\n".join(lines) + "\n" + "".join(tail), summary


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("outs", nargs="+", type=Path, help="the device run's $OUT folder(s)")
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "out" / "gpu_results",
                    help="unpacked files, DFT jobs (cached: a rerun resumes) and results")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "dft_validation.yaml")
    ap.add_argument("--dft", choices=["full", "quick", "skip"], default="full")
    ap.add_argument("--dft-systems", default="", help="comma-separated subset of the systems")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="GPAW structures run side by side (one core each)")
    ap.add_argument("--data-mirror", default=None,
                    help="datasets mirror (default: $VITRIFLOW_DATA_MIRROR)")
    ap.add_argument("--cache-dir", type=Path, default=REPO / "resources",
                    help="datasets cache (the config's data.cache_dir)")
    ap.add_argument("--markdown", type=Path, default=None,
                    help="write the Markdown here too (default: <work>/results.md)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("torch_sim").setLevel(logging.WARNING)
    if args.threads < 1:
        ap.error(f"--threads: expected >= 1, got {args.threads}")
    try:
        found = collect([p.resolve() for p in args.outs], args.work)
        sections = [throughput_table(found["throughput"], found["env"])]
        text, silica = silica_table(found["silica"], args.cache_dir, args.data_mirror)
        sections.append(text)
        systems = [s for s in args.dft_systems.split(",") if s]
        text, dft = dft_comparison(found["dftval"], args.work, args.config, args.dft, systems,
                                   args.threads)
        sections.append(text)
    except ResultsError as exc:
        raise SystemExit(f"gpu_results: {exc}") from None
    command = " ".join(shlex.quote(a) for a in ["python", "benchmarks/gpu_results.py",
                                                *sys.argv[1:]]) if argv is None else ""
    sources = {p: (found[p] or {}).get("from", "—") for p in PARTS}
    sections.append("### Provenance\n\n" + "".join(f"- {p}: {src}\n" for p, src in sources.items())
                    + (f"- command: `{command}`\n" if command else ""))
    markdown = "\n".join(sections)
    print(markdown)
    target = args.markdown or args.work / "results.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(markdown)
    (args.work / "results.json").write_text(json.dumps(
        {"silica": silica, "dft": dft, "sources": sources}, indent=1, default=str) + "\n")
    print(f"gpu_results: written {target} and {args.work / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
