"""Result files and logs: CSV and Markdown outputs carry their provenance and are written
atomically; a job that dies leaves its traceback in its rule log."""

import json
import os

import pandas as pd
import pytest

from vitriflow.io import provenance_comment, read_csv, write_csv


def test_csv_round_trip_keeps_rows_and_provenance(tmp_path):
    df = pd.DataFrame({"label": ["a#1", "b"], "x": [0.1234567, 2.0]})
    path = tmp_path / "t.csv"
    write_csv(df, path, {"stage": "demo", "seed": 3}, float_format="%.4g")
    back, prov = read_csv(path)
    assert prov == {"stage": "demo", "seed": 3}
    assert list(back["label"]) == ["a#1", "b"]  # a '#' inside a value is data, not a comment
    assert back["x"].tolist() == pytest.approx([0.1235, 2.0])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_failed_csv_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(pd.DataFrame({"x": [1]}), path, {"stage": "old"})
    # a float format pandas cannot apply fails mid-write
    with pytest.raises((TypeError, ValueError)):
        write_csv(pd.DataFrame({"x": [2.0]}), path, {"stage": "new"}, float_format="%d%q")
    assert read_csv(path)[1] == {"stage": "old"}
    assert list(tmp_path.iterdir()) == [path]


def test_plain_csv_reads_without_provenance(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y\n1,2\n")
    df, prov = read_csv(path)
    assert prov == {} and df.to_dict("records") == [{"x": 1, "y": 2}]


def test_markdown_provenance_comment_cannot_close_early():
    text = provenance_comment({"command": "snakemake --cores 2"})
    body = text.strip().removeprefix("<!-- vitriflow provenance: ").removesuffix(" -->")
    assert "--" not in body and json.loads(body) == {"command": "snakemake --cores 2"}


def test_a_job_that_dies_says_so_in_one_line_and_logs_its_traceback(tmp_path):
    import subprocess
    import sys

    log = tmp_path / "logs" / "job.log"
    code = (
        "from vitriflow.runtime import script_logger\n"
        f"log = script_logger('job', {str(log)!r})\n"
        "log.info('started')\n"
        "raise ValueError('dissolution.table: no such column pH')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    text = log.read_text()
    assert (
        "started" in text and "job failed: ValueError: dissolution.table: no such column pH" in text
    )
    assert "Traceback" in text
    assert "Traceback" not in proc.stderr  # the console gets one line naming the log
    assert proc.stderr.strip().splitlines()[-1] == (
        f"vitriflow job error: ValueError: dissolution.table: no such column pH "
        f"(traceback in {log})"
    )
    debug = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "VITRIFLOW_DEBUG": "1"},
    )
    assert debug.stderr.count("Traceback") == 1


def test_structures_file_does_not_depend_on_the_order_arrays_were_added(tmp_path):
    import numpy as np
    from ase import Atoms

    from vitriflow.io import read_structures, write_structures

    a = Atoms("SiO2", positions=[[0, 0, 0], [1.6, 0, 0], [0, 1.6, 0]], cell=[5, 5, 5], pbc=True)
    b = a.copy()
    a.new_array("forces", np.ones((3, 3)))
    a.new_array("coordination_no", np.array([4, 2, 2]))
    b.new_array("coordination_no", np.array([4, 2, 2]))
    b.new_array("forces", np.ones((3, 3)))
    write_structures([a], tmp_path / "a.extxyz")
    write_structures([b], tmp_path / "b.extxyz")
    assert (tmp_path / "a.extxyz").read_bytes() == (tmp_path / "b.extxyz").read_bytes()
    back = read_structures(tmp_path / "a.extxyz")[0]
    assert back.arrays["coordination_no"].tolist() == [4, 2, 2]
