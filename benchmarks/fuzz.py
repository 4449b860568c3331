"""The fuzzing suite of ``tests/test_fuzz.py`` with a larger profile: every property runs
``--cases`` generated cases (the test suite runs 60).

    .venv/bin/python benchmarks/fuzz.py --cases 1000

Prints the number of properties, the cases per property and the wall time; exits with pytest's
status, so a case that ends in a traceback or a silent acceptance fails the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000, help="generated cases per property")
    args = ap.parse_args()
    env = {**os.environ, "VITRIFLOW_FUZZ_CASES": str(args.cases)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(REPO / "tests" / "test_fuzz.py")], env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    print(f"fuzz: {args.cases} cases per property, {wall:.0f} s, pytest exit {proc.returncode}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
