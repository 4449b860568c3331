"""Time `snakemake -n` (DAG build) for a config and count jobs per rule.

    python benchmarks/dag_build.py config/binary_scan.yaml
"""

import argparse
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("config", nargs="?", default="config/binary_scan.yaml",
                help="config file (default: %(default)s)")
config = ap.parse_args().config
t0 = time.perf_counter()
proc = subprocess.run(
    [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "2",
     "--configfile", config],
    capture_output=True, text=True,
)
elapsed = time.perf_counter() - t0
if proc.returncode:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines()
             if ln.strip() and not ln.startswith("Using workflow specific")]
    sys.exit(f"snakemake -n failed for {config}: {(lines or ['?'])[-1].strip()}")
counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
print(f"config: {config}\nDAG build (snakemake -n): {elapsed:.1f} s")
for rule, n in counts.items():
    print(f"  {rule:24s} {n}")
