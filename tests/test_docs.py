"""Docs stay in step with the code: every config key is documented."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_schema_key_is_in_config_readme():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "config-docs"), "--check",
                           str(REPO / "config" / "README.md")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
