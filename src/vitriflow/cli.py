"""``vitriflow`` command line: predictions from the models a workflow run has written.

    vitriflow viscosity predict --model results/viscosity/model.pt \\
        --composition SiO2=75,Na2O=25 --composition SiO2=66,Al2O3=10,Na2O=24 -T 900 1200 1500
    vitriflow dissolution predict --models results/dissolution/models.json \\
        --composition Na2O=20,Al2O3=10,SiO2=70 --ph 2 7 12
    vitriflow gnn predict --model results/surrogates/gnn/model.pt results/md/nas/quenched.extxyz

The workflow itself runs through ``snakemake`` (README); this entry point only reads its outputs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vitriflow import __version__

_VISCOSITY_COLUMNS = ["label", "T_K", "viscosity_ag", "viscosity_ag_std", "viscosity_myega",
                      "viscosity_am", "viscosity_vft", "viscosity_fv", "tg", "tg_std", "fragility",
                      "density", "refractive_index", "liquidus", "elastic_modulus", "cte",
                      "abbe_number"]


def parse_oxides(text: str, oxides: Sequence[str]) -> dict[str, float]:
    """'SiO2=75,Na2O=25' -> {'sio2': 75.0, 'na2o': 25.0}; names are case-insensitive."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        key = name.strip().lower()
        if not sep or key not in oxides:
            raise ValueError(f"--composition {text!r}: {item.strip()!r} is not <oxide>=<amount> "
                             f"with an oxide among {', '.join(oxides)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise ValueError(f"--composition {text!r}: amount {value.strip()!r} of {name.strip()} "
                             "is not a number") from None
    return out


def _viscosity_predict(args: argparse.Namespace) -> int:
    from vitriflow.surrogates.melt.features import OXIDES
    from vitriflow.surrogates.viscosity import MeltSurrogate, predict_compositions

    if not Path(args.model).is_file():
        raise ValueError(f"--model {args.model}: file not found (written by the viscosity_train rule)")
    if not all(t > 0 for t in args.temperatures):
        raise ValueError(f"-T/--temperatures {args.temperatures}: expected positive temperatures in K")
    comps = []
    for i, text in enumerate(args.composition):
        label = args.label[i] if args.label and i < len(args.label) else text
        comps.append({"label": label, **parse_oxides(text, OXIDES)})
    out = predict_compositions(MeltSurrogate.load(args.model), comps, args.temperatures,
                               args.wavelength)
    if not args.all_columns:
        out = out[[c for c in _VISCOSITY_COLUMNS if c in out.columns]]
    if args.out:
        out.to_csv(args.out, index=False, float_format="%.6g")
    else:
        print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _gnn_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from vitriflow.io import read_structures
    from vitriflow.surrogates.gnn import GNNRegressor

    if not Path(args.model).is_file():
        raise ValueError(f"--model {args.model}: file not found (written by the gnn_train rule)")
    est = GNNRegressor.load(args.model)
    rows = []
    for path in args.structures:
        if not Path(path).is_file():
            raise ValueError(f"{path}: structure file not found (extended XYZ, e.g. results/md/<system>/quenched.extxyz)")
        frames = read_structures(path)
        mean, std = est.predict(frames)
        for k, (a, m, s) in enumerate(zip(frames, mean, std, strict=True)):
            rows.append({"file": path, "frame": k, "structure_id": a.info.get("structure_id", ""),
                         "formula": a.get_chemical_formula(), "n_atoms": len(a),
                         est.meta_.get("target", "prediction"): m, "sigma": s})
    out = pd.DataFrame(rows)
    if args.out:
        out.to_csv(args.out, index=False, float_format="%.6g")
    else:
        print(out.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vitriflow", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"vitriflow {__version__}")
    stage = ap.add_subparsers(dest="stage", required=True)
    visc = stage.add_parser("viscosity", help="melt viscosity and glass property surrogate")
    vcmd = visc.add_subparsers(dest="cmd", required=True)
    p = vcmd.add_parser("predict", help="properties of compositions at temperatures")
    p.add_argument("--model", required=True, help="model.pt written by the viscosity_train rule")
    p.add_argument("--composition", action="append", required=True,
                   help="oxide amounts (mol%% or fractions), e.g. SiO2=75,Na2O=25; repeat for more")
    p.add_argument("--label", action="append", help="name of each --composition, in order")
    p.add_argument("-T", "--temperatures", type=float, nargs="+", required=True, help="K")
    p.add_argument("--wavelength", type=float, default=0.5893,
                   help="micrometres, for the refractive index (default: sodium D line)")
    p.add_argument("--all-columns", action="store_true",
                   help="every predicted column (equation parameters, standard deviations) instead of the main ones")
    p.add_argument("--out", help="write CSV here instead of printing a table")
    p.set_defaults(func=_viscosity_predict)
    gnn = stage.add_parser("gnn", help="graph-network surrogate of per-structure MD properties")
    gcmd = gnn.add_subparsers(dest="cmd", required=True)
    p = gcmd.add_parser("predict", help="the trained target for every frame of extended-XYZ files")
    p.add_argument("--model", required=True, help="model.pt written by the gnn_train rule")
    p.add_argument("structures", nargs="+", help="extended XYZ files of periodic cells")
    p.add_argument("--out", help="write CSV here instead of printing a table")
    p.set_defaults(func=_gnn_predict)
    diss = stage.add_parser("dissolution", add_help=False,
                            help="dissolution-rate models (python -m vitriflow.surrogates.dissolution)")
    diss.add_argument("rest", nargs=argparse.REMAINDER)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.stage == "dissolution":
        from vitriflow.surrogates.dissolution import main as dissolution_main

        return dissolution_main(args.rest)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        ap.exit(2, f"vitriflow: error: {exc}\n")


if __name__ == "__main__":
    raise SystemExit(main())
