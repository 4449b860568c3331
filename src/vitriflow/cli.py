"""``vitriflow`` command line: predictions from the models a workflow run has written.

    vitriflow viscosity predict --model results/surrogates/viscosity/model.pt \\
        --composition SiO2=75,Na2O=25 --composition SiO2=66,Al2O3=10,Na2O=24 -T 900 1200 1500
    vitriflow dissolution predict --models results/surrogates/dissolution/models.json \\
        --composition Na2O=20,Al2O3=10,SiO2=70 --ph 2 7 12
    vitriflow dissolution descriptors --composition Na2O=20,Al2O3=10,SiO2=70
    vitriflow gnn predict --model results/surrogates/gnn/model.pt results/md/nas/quenched.extxyz
    vitriflow pcf predict --model results/surrogates/pcf/model.joblib \\
        --composition SiO2=70,Al2O3=10,Na2O=20 --out pcf.csv

    vitriflow config check config/config.yaml

The workflow itself runs through ``snakemake`` (README); this entry point checks its configs and
reads its outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vitriflow import __version__
from vitriflow.composition import parse_oxides

_VISCOSITY_COLUMNS = [
    "label",
    "T_K",
    "viscosity_ag",
    "viscosity_ag_std",
    "viscosity_myega",
    "viscosity_am",
    "viscosity_vft",
    "viscosity_fv",
    "tg",
    "tg_std",
    "fragility",
    "density",
    "refractive_index",
    "liquidus",
    "elastic_modulus",
    "cte",
    "abbe_number",
]


def _write_csv(out, args: argparse.Namespace, inputs) -> None:
    """``--out`` CSV with a provenance line (the command line and the model's checksum)."""
    from vitriflow.io import provenance, write_csv

    write_csv(
        out,
        args.out,
        provenance(stage=f"cli {args.stage} {args.cmd}", inputs=inputs, argv=sys.argv[1:]),
        float_format="%.6g",
    )


def _viscosity_predict(args: argparse.Namespace) -> int:
    from vitriflow.surrogates.viscosity.estimator import ViscositySurrogate
    from vitriflow.surrogates.viscosity.features import OXIDES
    from vitriflow.surrogates.viscosity.predict import (
        extrapolation_warnings,
        predict_compositions,
    )

    if not Path(args.model).is_file():
        raise ValueError(
            f"--model {args.model}: file not found (written by the viscosity_train rule)"
        )
    if not all(t > 0 for t in args.temperatures):
        raise ValueError(
            f"-T/--temperatures {args.temperatures}: expected positive temperatures in K"
        )
    labels = args.label or []
    if len(labels) > len(args.composition):
        raise ValueError(
            f"--label: {len(labels)} labels for {len(args.composition)} "
            "--composition(s); expected at most one --label per --composition, "
            "in the same order"
        )
    comps = [
        {"label": labels[i] if i < len(labels) else text, **parse_oxides(text, OXIDES)}
        for i, text in enumerate(args.composition)
    ]
    out = predict_compositions(
        ViscositySurrogate.load(args.model),
        comps,
        args.temperatures,
        args.wavelength,
        name="--composition/--label",
    )
    for line in extrapolation_warnings(out):
        print(line, file=sys.stderr)
    if not args.all_columns:
        out = out[[c for c in _VISCOSITY_COLUMNS if c in out.columns]]
    if args.out:
        _write_csv(out, args, [args.model])
    else:
        print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _gnn_rows(est, path: str, target: str) -> list[dict]:
    """One row per frame of ``path``: the prediction (status ok), or the reason it has none
    (status failed: a frame that cannot be parsed or that the model cannot take; the whole file
    when nothing in it can be read)."""
    import numpy as np

    from vitriflow.io import read_structures_frame_by_frame

    def whole_file_failed(reason: str) -> list[dict]:
        return [
            {"file": path, "structure_id": "", "formula": "", "status": "failed", "reason": reason}
        ]

    try:
        parsed = read_structures_frame_by_frame(path)
    except (OSError, UnicodeDecodeError) as exc:
        return whole_file_failed(f"not readable as extended XYZ: {exc}")
    if not parsed:
        return whole_file_failed("no frames in the file")
    if len(parsed) == 1 and parsed[0][0] is None:
        return whole_file_failed(f"not readable as extended XYZ: {parsed[0][1]}")
    frames = [a for a, _ in parsed if a is not None]
    problems = est.problems(frames)
    why = iter(problems)
    good = [a for a, w in zip(frames, problems, strict=True) if not w]
    predicted = zip(*est.predict(good), strict=True) if good else iter(())
    rows = []
    for k, (a, unreadable) in enumerate(parsed):
        if a is None:
            rows.append(
                {
                    "file": path,
                    "frame": k,
                    "structure_id": "",
                    "formula": "",
                    "status": "failed",
                    "reason": f"not readable as extended XYZ: {unreadable}",
                }
            )
            continue
        w = next(why)
        mean, sigma = (np.nan, np.nan) if w else next(predicted)
        rows.append(
            {
                "file": path,
                "frame": k,
                "structure_id": a.info.get("structure_id", ""),
                "formula": a.get_chemical_formula(),
                "n_atoms": len(a),
                target: mean,
                "sigma": sigma,
                "status": "failed" if w else "ok",
                "reason": w,
            }
        )
    return rows


def _gnn_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from vitriflow.surrogates.gnn import GNNRegressor

    if not Path(args.model).is_file():
        raise ValueError(f"--model {args.model}: file not found (written by the gnn_train rule)")
    for path in args.structures:  # a mistyped path stops the command before any work
        if not Path(path).is_file():
            raise ValueError(
                f"{path}: structure file not found (extended XYZ, "
                "e.g. results/md/<system>/quenched.extxyz)"
            )
    est = GNNRegressor.load(args.model)
    target = est.meta_.get("target", "prediction")
    out = pd.DataFrame(
        [row for path in args.structures for row in _gnn_rows(est, path, target)],
        columns=[
            "file",
            "frame",
            "structure_id",
            "formula",
            "n_atoms",
            target,
            "sigma",
            "status",
            "reason",
        ],
    )
    out[["frame", "n_atoms"]] = out[["frame", "n_atoms"]].astype(
        "Int64"
    )  # empty for a file that could not be read
    failed = [
        (
            r.file
            if pd.isna(r.frame)
            else f"{r.file} frame {r.frame} ({r.structure_id or 'no structure_id'})",
            r.reason,
        )
        for r in out[out["status"] != "ok"].itertuples()
    ]
    if len(failed) == len(
        out
    ):  # one bad frame never stops the others, but nothing predicted is an error
        raise ValueError(
            f"no frame could be predicted ({len(failed)} failed); {failed[0][0]}: {failed[0][1]}"
        )
    for where, reason in failed:
        print(f"warning: {where}: not predicted: {reason}", file=sys.stderr)
    if args.out:
        _write_csv(out, args, [args.model, *args.structures])
    else:
        print(out.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 0


def _check_labels(args: argparse.Namespace) -> None:
    if args.label and len(args.label) != len(args.composition):
        raise ValueError(
            f"--label given {len(args.label)} times for {len(args.composition)} "
            "--composition; expected one label per composition, in order"
        )


def _fractions(text: str, amounts: dict[str, float]) -> dict[str, float]:
    """Mole fractions of a --composition, read as configs are: mol% summing to 100 or
    fractions summing to 1 (anything else is refused, not silently renormalised)."""
    from vitriflow.composition import SUM_TOLERANCE

    total = sum(amounts.values())
    if any(v < 0 for v in amounts.values()):
        raise ValueError(f"--composition {text!r}: negative amount; expected amounts >= 0")
    if abs(total - 100) > 100 * SUM_TOLERANCE and abs(total - 1) > SUM_TOLERANCE:
        raise ValueError(
            f"--composition {text!r}: amounts sum to {total:g}; expected 100 (mol%) or "
            "1 (mole fractions), as in configs"
        )
    return {c: v / total for c, v in amounts.items()}


def _pcf_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from vitriflow.surrogates.pcf.evaluate import first_peak
    from vitriflow.surrogates.pcf.pipeline import PCFPredictor

    if not Path(args.model).is_file():
        raise ValueError(f"--model {args.model}: file not found (written by the pcf_train rule)")
    pred = PCFPredictor.load(args.model)
    components = list(pred.fingerprint.components)
    by_lower = {c.lower(): c for c in components}
    curves, peaks, warnings = [], [], []
    _check_labels(args)
    for i, text in enumerate(args.composition):
        amounts = {by_lower[k]: v for k, v in parse_oxides(text, list(by_lower)).items()}
        fractions = _fractions(text, amounts)
        label = args.label[i] if args.label else text
        pairs, g = pred.predict(fractions, args.pairs)
        dist = pred.nearest_mol(
            fractions
        )  # None for a model saved before it kept its training glasses
        near = {} if dist is None else {"nearest_mol": dist}
        warnings.append(pred.domain_warning(label, fractions))
        for pair, curve in zip(pairs, g, strict=True):
            r0, h0 = first_peak(pred.r, curve)
            peaks.append(
                {"label": label, "pair": pair, "first_peak_r_A": r0, "first_peak_g": h0, **near}
            )
            curves.append(pd.DataFrame({"label": label, "pair": pair, "r_A": pred.r, "g": curve}))
    for line in filter(None, warnings):  # once every composition has been predicted
        print(line, file=sys.stderr)
    if args.out:
        _write_csv(pd.concat(curves, ignore_index=True), args, [args.model])
    print(pd.DataFrame(peaks).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _dissolution(args: argparse.Namespace) -> int:
    """``dissolution descriptors|predict``. --composition is read as the systems' compositions
    are: oxides of the constraint rules, mol % summing to 100 or mole fractions summing to 1.
    ``--debug`` prints the traceback of a refused input before its one-line error."""
    import json

    from vitriflow.surrogates.dissolution.predict import check_composition, predict_from_file
    from vitriflow.surrogates.dissolution.topology import (
        SUPPORTED_OXIDES,
        canonical_oxides,
        count_constraints,
    )

    try:
        names = [o.lower() for o in SUPPORTED_OXIDES]
        comp = canonical_oxides(parse_oxides(args.composition, names))
        check_composition(comp, f"--composition {args.composition!r}")
        if args.cmd == "descriptors":
            print(json.dumps(count_constraints(comp, "--composition").as_dict(), indent=2))
            return 0
        out = predict_from_file(
            args.models, args.model, [{"label": "cli", "composition": comp, "pH": args.ph}]
        )
        print(out.to_string(index=False))
        return 0
    except Exception:
        if args.debug:
            import traceback

            traceback.print_exc()
        raise


def _config_check(args: argparse.Namespace) -> int:
    from vitriflow.config import STAGE_SECTIONS, check_file

    for path in args.files:
        settings = check_file(path)
        enabled = [name for name in STAGE_SECTIONS if name in settings.config]
        print(
            f"{path}: ok ({len(settings.systems)} systems; stage sections: "
            f"{', '.join(enabled) or 'none'})"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vitriflow", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"vitriflow {__version__}")
    stage = ap.add_subparsers(dest="stage", required=True)
    visc = stage.add_parser("viscosity", help="melt viscosity and glass property surrogate")
    vcmd = visc.add_subparsers(dest="cmd", required=True)
    p = vcmd.add_parser("predict", help="properties of compositions at temperatures")
    p.add_argument("--model", required=True, help="model.pt written by the viscosity_train rule")
    p.add_argument(
        "--composition",
        action="append",
        required=True,
        help="oxide amounts summing to 100 (mol%%) or 1 (fractions), e.g. "
        "SiO2=75,Na2O=25; repeat for more",
    )
    p.add_argument("--label", action="append", help="name of each --composition, in order")
    p.add_argument("-T", "--temperatures", type=float, nargs="+", required=True, help="K")
    p.add_argument(
        "--wavelength",
        type=float,
        default=0.5893,
        help="micrometres, for the refractive index (default: sodium D line)",
    )
    p.add_argument(
        "--all-columns",
        action="store_true",
        help="every predicted column (equation parameters, standard deviations) "
        "instead of the main ones",
    )
    p.add_argument("--out", help="write CSV here instead of printing a table")
    p.set_defaults(func=_viscosity_predict)
    gnn = stage.add_parser("gnn", help="graph-network surrogate of per-structure MD properties")
    gcmd = gnn.add_subparsers(dest="cmd", required=True)
    p = gcmd.add_parser("predict", help="the trained target for every frame of extended-XYZ files")
    p.add_argument("--model", required=True, help="model.pt written by the gnn_train rule")
    p.add_argument("structures", nargs="+", help="extended XYZ files of periodic cells")
    p.add_argument("--out", help="write CSV here instead of printing a table")
    p.set_defaults(func=_gnn_predict)
    pcf = stage.add_parser(
        "pcf", help="partial pair-correlation functions of glasses from their composition"
    )
    pcmd = pcf.add_subparsers(dest="cmd", required=True)
    p = pcmd.add_parser(
        "predict", help="partial g(r) of compositions; prints first peaks, --out writes curves"
    )
    p.add_argument("--model", required=True, help="model.joblib written by the pcf_train rule")
    p.add_argument(
        "--composition",
        action="append",
        required=True,
        help="amounts of the trained family's components (mol%% or fractions, normalised), "
        "e.g. SiO2=70,Al2O3=10,Na2O=20; repeat for more",
    )
    p.add_argument("--label", action="append", help="name of each --composition, in order")
    p.add_argument(
        "--pairs",
        nargs="+",
        help="pairs to predict, e.g. O-Si Na-O (default: every pair of the glass)",
    )
    p.add_argument("--out", help="write the curves (label, pair, r_A, g) as CSV here")
    p.set_defaults(func=_pcf_predict)
    diss = stage.add_parser("dissolution", help="topology-informed dissolution-rate models")
    dcmd = diss.add_subparsers(dest="cmd", required=True)
    diss_comp = "oxide mol %% (sum 100) or fractions (sum 1), e.g. Na2O=20,Al2O3=10,SiO2=70"
    p = dcmd.add_parser("predict", help="rates for one composition at given pH values")
    p.add_argument(
        "--models", required=True, help="models.json written by the dissolution_evaluate rule"
    )
    p.add_argument("--model", default="IV@initial", help="card key, e.g. IV@initial (default)")
    p.add_argument("--composition", required=True, help=diss_comp)
    p.add_argument("--ph", type=float, nargs="+", required=True)
    p.add_argument("--debug", action="store_true", help="show the traceback of a refused input")
    p.set_defaults(func=_dissolution)
    p = dcmd.add_parser("descriptors", help="constraint counts of one composition")
    p.add_argument("--composition", required=True, help=diss_comp)
    p.add_argument("--debug", action="store_true", help="show the traceback of a refused input")
    p.set_defaults(func=_dissolution)
    cfg = stage.add_parser("config", help="check a config file before running it")
    ccmd = cfg.add_subparsers(dest="cmd", required=True)
    p = ccmd.add_parser(
        "check", help="every start-up check of the workflow, naming file, line and key"
    )
    p.add_argument("files", nargs="+", help="config YAML files, e.g. config/config.yaml")
    p.set_defaults(func=_config_check)
    ap.add_argument(
        "--debug",
        action="store_true",
        dest="debug_all",
        help="show the traceback of an error instead of one line",
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; a failure is one line naming the file, key or value (exit 2), the
    traceback only with --debug."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure at the edge becomes one line
        if args.debug_all or getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        known = isinstance(exc, ValueError | OSError)
        ap.exit(2, f"vitriflow: error: {first if known else f'{type(exc).__name__}: {first}'}\n")


if __name__ == "__main__":
    raise SystemExit(main())
