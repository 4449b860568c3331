"""A CPU stand-in for the device's Python environment, and the import-closure check of the pack.

The device has its own Python 3.12 with torch and ~200 other distributions
(``device-packages.txt``) and nothing else; the pack (``pack-requirements.txt``) brings the rest.
``simulated_site`` links into one folder only the top-level modules of those distributions as
installed in this environment, so ``python -S`` with ``PYTHONPATH=<folder>:src`` imports what
the device will import and fails, as the device would, on anything else (pymatgen, warp,
nvalchemiops, ...): optional imports then take the device's fallbacks.

    python benchmarks/gpu_pack/device_env.py site DEST [--no-pack]   # print the PYTHONPATH entry
    python benchmarks/gpu_pack/device_env.py check-closure --site build/stage/site
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEVICE_PACKAGES = HERE / "device-packages.txt"
PACK_REQUIREMENTS = HERE / "pack-requirements.txt"
#: what the device-side scripts import, part by part (device_run.py)
CLOSURE_MODULES = (
    "torch_sim", "sevenn.torchsim", "sevenn.calculator", "ase.md.nose_hoover_chain",
    "vitriflow.md.engine", "vitriflow.md.protocol", "vitriflow.structures.packing",
    "vitriflow.potentials", "vitriflow.io", "vitriflow.runtime", "device_run",
)
#: must never load on the device: not installed there and too large to carry
FORBIDDEN = ("pymatgen", "warp", "nvalchemiops")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).strip().lower()


def _names(path: Path) -> set[str]:
    out = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.add(normalise(re.split(r"[=<>!~ \[]", line, maxsplit=1)[0]))
    return out


def device_distributions(include_pack: bool = True) -> set[str]:
    """Normalised names of the distributions the device run can import."""
    names = _names(DEVICE_PACKAGES)
    return names | _names(PACK_REQUIREMENTS) if include_pack else names


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def simulated_site(dest: str | os.PathLike, include_pack: bool = True,
                   site_packages: str | os.PathLike | None = None) -> Path:
    """Link the top-level entries (packages, modules, ``*.libs``, dist-info) of the device's
    distributions, as installed here, into ``dest``; returns ``dest``. A distribution missing
    here is simply absent, as it would be on a device without it."""
    site = Path(site_packages) if site_packages else _site_packages()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    allowed = device_distributions(include_pack)
    for dist in md.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if not name or normalise(name) not in allowed or not dist.files:
            continue
        for top in {f.parts[0] for f in dist.files if f.parts and f.parts[0] != ".."}:
            src = site / top
            if top.endswith(".pth") or not src.exists() or (dest / top).exists():
                continue
            (dest / top).symlink_to(src, target_is_directory=src.is_dir())
    return dest


def _closure_probe() -> None:
    """Run in the stand-in environment: import the device run's modules, print what loaded."""
    import importlib

    loaded_before = set(sys.modules)
    for name in CLOSURE_MODULES:
        importlib.import_module(name)
    dists = md.packages_distributions()
    tops = sorted(t for t in {m.split(".")[0] for m in sys.modules}
                  - {m.split(".")[0] for m in loaded_before} - set(sys.stdlib_module_names)
                  if not t.startswith("_") and t != "cython_runtime")  # C-extension helpers
    from torch_sim import neighbors

    print(json.dumps({
        "modules": {t: sorted(set(dists.get(t, []))) for t in tops},
        "forbidden_loaded": sorted(set(FORBIDDEN) & {m.split(".")[0] for m in sys.modules}),
        "neighbour_list": {"alchemiops": neighbors.ALCHEMIOPS_AVAILABLE,
                           "vesin_torch": neighbors.VESIN_TORCHSCRIPT_AVAILABLE,
                           "vesin": neighbors.VESIN_AVAILABLE},
    }))


def check_closure(site: str | os.PathLike | None, work: str | os.PathLike) -> dict:
    """Import the device run's modules with only the device's distributions (from this
    environment) plus ``site`` (the unpacked pack; None = the pack's distributions from this
    environment). Raises when an import fails or a forbidden package loads."""
    stand_in = simulated_site(Path(work) / "device_site", include_pack=site is None)
    path = [str(stand_in)] + ([str(site)] if site else []) + [str(REPO / "src"), str(HERE)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-S", str(Path(__file__).resolve()), "_probe"],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"device_env: the device-side imports fail in the stand-in: {tail[0]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["forbidden_loaded"]:
        raise SystemExit(f"device_env: the device-side imports load {report['forbidden_loaded']}, "
                         "which the device does not have")
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("site", help="build the stand-in folder and print it")
    s.add_argument("dest")
    s.add_argument("--no-pack", action="store_true", help="device packages only")
    c = sub.add_parser("check-closure", help="import the device run's modules in the stand-in")
    c.add_argument("--site", default=None, help="unpacked pack site (default: this environment)")
    c.add_argument("--work", default=str(HERE / "build" / "closure"))
    sub.add_parser("_probe")
    args = ap.parse_args(argv)
    if args.command == "site":
        print(simulated_site(args.dest, include_pack=not args.no_pack))
    elif args.command == "_probe":
        _closure_probe()
    else:
        import shutil

        shutil.rmtree(Path(args.work) / "device_site", ignore_errors=True)
        report = check_closure(args.site, args.work)
        for top, dists in report["modules"].items():
            print(f"  {top:28s} {', '.join(dists) or '(repository)'}")
        print(f"device_env: {len(report['modules'])} top-level modules load; neighbour lists "
              f"available: {report['neighbour_list']}")


if __name__ == "__main__":
    main()
