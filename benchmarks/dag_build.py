"""Time `snakemake -n` (DAG build) for a config and count jobs per rule.

    python benchmarks/dag_build.py config/binary_scan.yaml
"""

import re
import subprocess
import sys
import time

config = sys.argv[1] if len(sys.argv) > 1 else "config/binary_scan.yaml"
t0 = time.perf_counter()
out = subprocess.run(
    [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "2", "--configfile", config],
    capture_output=True, text=True, check=True,
).stdout
elapsed = time.perf_counter() - t0
counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
print(f"config: {config}\nDAG build (snakemake -n): {elapsed:.1f} s")
for rule, n in counts.items():
    print(f"  {rule:24s} {n}")
