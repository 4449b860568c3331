"""Shared fixtures. Data under ../shared is optional: tests that need it skip with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data, or skip the test when the checkout has no ../shared beside it."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(
            "../shared/data is not beside this checkout (fresh clone): dataset test skipped")
    return data


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny workflow (one 24-atom SiO2 system, a few dozen MD steps) run once, locally."""
    from workflow_helpers import TINY, snakemake, write_config

    work = tmp_path_factory.mktemp("tiny_dag")
    write_config(work, TINY)
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work
