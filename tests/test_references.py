"""Reference selection from the three sources: live client (substituted), snapshot, estimate."""

import gzip
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from vitriflow import references
from vitriflow.composition import parse_composition
from vitriflow.io import read_table
from vitriflow.references import (
    ReferenceError,
    build_snapshot_index,
    serve_references,
)

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-0123456789abcdef"


def _entries():
    """Real pymatgen entries for a small Si-O system (energies of MP's magnitude)."""
    si = Structure(Lattice.cubic(5.43), ["Si"] * 8, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                   [0, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75],
                   [0.25, 0.75, 0.75]])
    o2 = Structure(Lattice.cubic(6.0), ["O", "O"], [[0, 0, 0], [0.2, 0, 0]])
    quartz = Structure(Lattice.hexagonal(4.91, 5.40), ["Si"] * 3 + ["O"] * 6,
                       [[0.47, 0, 2 / 3], [0, 0.47, 1 / 3], [0.53, 0.53, 0],
                        [0.41, 0.27, 0.79], [0.73, 0.14, 0.45], [0.86, 0.59, 0.12],
                        [0.27, 0.41, 0.21], [0.14, 0.73, 0.55], [0.59, 0.86, 0.88]])
    return [
        ComputedStructureEntry(si, -5.42 * 8, entry_id="mp-149"),
        ComputedStructureEntry(o2, -4.95 * 2, entry_id="mp-12957"),
        ComputedStructureEntry(quartz, -7.90 * 9, entry_id="mp-7000"),
    ]


class SubstituteMPRester:
    """Stands in for mp_api.client.MPRester: same methods, real pymatgen entries."""

    def __init__(self, api_key=None, **kwargs):
        self.api_key = api_key
        self.calls = []

    def get_entries_in_chemsys(self, elements, **kwargs):
        self.calls.append(sorted(elements))
        return [e for e in _entries() if {el.symbol for el in e.composition} <= set(elements)]

    def get_database_version(self):
        return "2025.09.25"


def test_live_source_is_used_and_labelled(monkeypatch, caplog, tmp_path):
    import mp_api.client

    monkeypatch.setenv("MP_API_KEY", SECRET)
    monkeypatch.setattr(mp_api.client, "MPRester", SubstituteMPRester)
    caplog.set_level(logging.INFO)
    table, crystals = serve_references([parse_composition("SiO2"), parse_composition("Si2O3")])
    assert set(table["source"]) == {"live"}
    assert table["source_version"].iloc[0] == "MP database 2025.09.25"
    quartz = table.iloc[0]
    # quartz is on the hull: E_f = E(SiO2)/atom - (E(Si) + 2 E(O))/3
    assert quartz["formation_energy_per_atom_eV"] == pytest.approx(-7.90 + (5.42 + 2 * 4.95) / 3)
    assert "mp-7000" in quartz["decomposition"]
    # Si2O3 lies between Si and SiO2 on the hull
    assert ("mp-149" in table.iloc[1]["decomposition"]
            and "mp-7000" in table.iloc[1]["decomposition"])
    assert {a.info["material_id"] for a in crystals} >= {"mp-7000", "mp-149"}
    assert json.loads(quartz["elemental_reference_energies"]) == pytest.approx(
        {"O": -4.95, "Si": -5.42})
    from vitriflow.io import write_table

    write_table(table, tmp_path / "t.parquet", {"stage": "test"})
    dumped = (tmp_path / "t.parquet").read_bytes().decode("latin-1")
    assert SECRET not in dumped and SECRET not in caplog.text


def test_live_failure_falls_back_without_leaking_the_key(monkeypatch, caplog):
    import mp_api.client

    class Broken(SubstituteMPRester):
        def get_database_version(self):
            raise ConnectionError(f"could not reach api with key {SECRET}")

    monkeypatch.setenv("MP_API_KEY", SECRET)
    monkeypatch.setattr(mp_api.client, "MPRester", Broken)
    caplog.set_level(logging.INFO)
    table, _ = serve_references([parse_composition("SiO2")])
    assert set(table["source"]) == {"estimate"}
    assert "unavailable" in caplog.text and SECRET not in caplog.text


def test_forced_live_without_key_is_an_error(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(ReferenceError, match="API is unavailable"):
        serve_references([parse_composition("SiO2")], source="live")


def test_estimate_is_labelled_and_has_no_energies():
    table, crystals = serve_references([parse_composition("SiO2")], source="estimate")
    row = table.iloc[0]
    assert row["source"] == "estimate"
    assert row["volume_per_atom_A3"] > 5
    assert row["formation_energy_per_atom_eV"] != row["formation_energy_per_atom_eV"]  # NaN
    assert crystals == []


@pytest.fixture(scope="module")
def snapshot(shared_data, tmp_path_factory):
    """The registry's Materials Project snapshot, fetched from the mirror and indexed."""
    from vitriflow.datasets import fetch

    cache = tmp_path_factory.mktemp("cache")
    return build_snapshot_index({role: fetch(key, cache, shared_data)
                                 for role, key in references.SNAPSHOT_DATASETS.items()})


def test_snapshot_gives_hull_volumes_and_checksums(snapshot):
    index, checksums = snapshot
    assert set(checksums) == set(references.SNAPSHOT_DATASETS)
    table, crystals = serve_references([parse_composition("SiO2"), parse_composition("Na2O-3SiO2")],
                                       source="snapshot", snapshot=index, snapshot_version="v")
    assert set(table["source"]) == {"snapshot"}
    silica = table.iloc[0]
    assert 12 < silica["volume_per_atom_A3"] < 17  # crystalline SiO2 polymorphs (PBE volumes)
    assert silica["formation_energy_per_atom_eV"] == pytest.approx(-3.28, abs=0.15)
    assert {a.info["role"] for a in crystals} == {"phase", "element"}


def test_snapshot_refuses_elements_it_lacks(snapshot):
    index, _ = snapshot
    with pytest.raises(ReferenceError, match="no elemental reference"):
        references.snapshot_reference_set(index, ["Si", "Og"], "v")


def write_tiny_snapshot(cache):
    """A Si-O snapshot in the formats of the registry's files, laid out as the dataset cache
    (``<cache>/<key>/<file>``): quartz in the FLLA table, one binary joined with its formation
    energy, Si and O elemental polymorphs. Returns role -> path, as ``build_snapshot_index``
    takes them."""
    from vitriflow.datasets import dataset_path

    files = {role: dataset_path(key, cache) for role, key in references.SNAPSHOT_DATASETS.items()}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    si, o2, quartz = (e.structure for e in _entries())
    pd.DataFrame({"material_id": ["mp-7000"], "structure": [repr(quartz.as_dict())],
                  "formation_energy_per_atom": [-3.1]}).to_csv(files["flla"], index=False)
    pd.DataFrame({"task_id": ["mp-6930"], "formation_energy_per_atom": [-3.0]}).to_csv(
        files["formation"], index=False)
    dense = quartz.copy()
    dense.scale_lattice(quartz.volume * 0.9)
    documents = {
        "binary_structures": [{"mp_id": "mp-6930", "structure": dense.as_dict()}],
        "element_entries": {
            "Si": {"energy": -5.42 * 8, "composition": {"Si": 8}, "entry_id": "mp-149"},
            "O": {"energy": -4.95 * 2, "composition": {"O": 2}, "entry_id": "mp-12957"}},
        "element_structures": {"Si": {"energy_per_atom": [-5.42], "structure": [si.as_dict()]},
                               "O": {"energy_per_atom": [-4.95], "structure": [o2.as_dict()]}},
    }
    for role, doc in documents.items():
        with gzip.open(files[role], "wt") as fh:
            json.dump(doc, fh)
    return files


class FlakyMPRester(SubstituteMPRester):
    """The API answers its version check, then the entries query fails as mp_api does on a 503."""

    def get_entries_in_chemsys(self, elements, **kwargs):
        from mp_api.client.core.client import MPRestError

        raise MPRestError(f"REST query returned with error status code 503 on URL "
                          f"https://api.materialsproject.org/materials/thermo/?_fields=entries&key={SECRET}\n"
                          "Content: Service Unavailable")


def test_auto_falls_back_when_the_live_query_fails(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MP_API_KEY", SECRET)
    caplog.set_level(logging.INFO)
    table, _ = serve_references([parse_composition("SiO2")], source="auto", client=FlakyMPRester())
    assert set(table["source"]) == {"estimate"}
    assert "live source failed (Materials Project query for O-Si failed (MPRestError" in caplog.text
    assert "503" in caplog.text and SECRET not in caplog.text
    index, _ = build_snapshot_index(write_tiny_snapshot(tmp_path / "cache"))
    table, _ = serve_references([parse_composition("SiO2")], source="auto", client=FlakyMPRester(),
                                snapshot=index, snapshot_version="tiny")
    assert set(table["source"]) == {"snapshot"} and set(table["source_version"]) == {"tiny"}


def test_forced_live_query_failure_is_one_line(monkeypatch):
    monkeypatch.setenv("MP_API_KEY", SECRET)
    with pytest.raises(ReferenceError) as err:
        serve_references([parse_composition("SiO2")], source="live", client=FlakyMPRester())
    msg = str(err.value)
    assert msg.startswith("references.source is 'live': Materials Project query for O-Si failed "
                          "(MPRestError: ")
    assert "503" in msg and "\n" not in msg and SECRET not in msg
    # no chained message with the key
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_forced_snapshot_or_subset_without_an_index_is_one_line():
    for source in ("snapshot", "subset"):
        with pytest.raises(ReferenceError, match=f"references.source is '{source}' but the "
                                                 "reference index is empty"):
            serve_references([parse_composition("SiO2")], source=source, snapshot=None)


def test_index_is_the_snapshot_or_the_shipped_subset(tmp_path, caplog):
    table, prov = references.index_snapshot(write_tiny_snapshot(tmp_path / "cache"), "cache")
    assert (prov["index_source"] == "snapshot"
            and set(prov["snapshot_checksums"]) == set(references.SNAPSHOT_DATASETS))
    assert set(table["formula"]) == {"Si", "O2", "SiO2"}
    subset, prov = references.index_snapshot(None, "no mirror")
    assert prov["index_source"] == "subset" and prov["note"] == "no mirror"
    # a chemistry outside the subset falls through to the estimate, labelled
    caplog.set_level(logging.INFO)
    table, _ = serve_references([parse_composition("SiO2"), parse_composition("Cs2O-SiO2")],
                                source="auto", client=None, snapshot=subset,
                                snapshot_version="v", snapshot_label="subset")
    assert list(table["source"]) == ["subset", "estimate"]
    assert "subset source failed" in caplog.text


def test_shipped_subset_covers_every_shipped_config():
    """Every system of config/*.yaml (scans aside) finds its crystals and elemental phases in
    data/materials_project_subset.parquet: a clone without network has real references."""
    from vitriflow.config import expand_systems, validate_section

    subset = pd.read_parquet(references.SUBSET_PATH)
    for path in sorted((REPO / "config").glob("*.yaml")):
        cfg = validate_section(yaml.safe_load(path.read_text()), "config")
        cfg["scans"] = []
        for spec in (expand_systems(cfg) if cfg["systems"] else {}).values():
            references.snapshot_reference_set(subset, sorted(spec.elements()), "v", "subset")


# ----------------------------------------------------------------------------- through snakemake
def _tiny_workflow(tmp_path, refs, data=None):
    from workflow_helpers import TINY

    cfg = {**TINY, "references": refs, **({"data": data} if data else {})}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))


def _snakemake(workdir, *args):
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
           "--cores", "1", *args]
    # no live API in these runs, and no data mirror: each test says where its data come from
    env = {k: v for k, v in os.environ.items() if k not in ("MP_API_KEY", "VITRIFLOW_DATA_MIRROR")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


TARGET = "results/references/tiny_silica.parquet"


def test_without_mirror_or_network_the_subset_serves(tmp_path):
    """A fresh clone with neither mirror nor network: the snapshot cannot be had, the shipped
    subset serves (logged, labelled); forcing the snapshot is refused at start in one line."""
    _tiny_workflow(tmp_path, {"source": "auto"}, data={"download": False})
    proc = _snakemake(tmp_path, TARGET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table, _ = read_table(tmp_path / TARGET)
    assert (set(table["source"]) == {"subset"}
            and table["formation_energy_per_atom_eV"].notna().all())
    log = (tmp_path / "logs/references/snapshot_index.log").read_text()
    assert ("shipped Materials Project subset" in log and "dataset mp_" in log
            and "is not available" in log)
    _tiny_workflow(tmp_path, {"source": "snapshot"}, data={"download": False})
    proc = _snakemake(tmp_path, "-n", TARGET)
    line = [ln for ln in proc.stderr.splitlines() if "vitriflow config error" in ln]
    assert proc.returncode != 0 and len(line) == 1, proc.stderr[-2000:]
    assert line[0].startswith("vitriflow config error: references.source: 'snapshot' needs the "
                              "Materials Project snapshot: dataset mp_")


def test_forced_live_source_without_key_stops_before_any_job(tmp_path):
    """Without MP_API_KEY a forced live source is refused at start in one line (the job-level
    message for an API that does not answer is tested with a substituted client above)."""
    _tiny_workflow(tmp_path, {"source": "live"})
    proc = _snakemake(tmp_path, TARGET)
    assert proc.returncode != 0
    line = ("vitriflow config error: references.source: 'live' needs the MP_API_KEY environment "
            "variable")
    assert line in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_forced_live_source_with_key_passes_the_start_check(monkeypatch):
    from workflow_helpers import TINY

    from vitriflow.config import ConfigError, load_config

    monkeypatch.setenv("MP_API_KEY", SECRET)
    load_config({**TINY, "references": {"source": "live"}})
    monkeypatch.delenv("MP_API_KEY")
    with pytest.raises(ConfigError, match="needs the MP_API_KEY"):
        load_config({**TINY, "references": {"source": "live"}})


def test_changed_snapshot_file_reruns_the_references(tmp_path):
    """The snapshot files are inputs of snapshot_index: new content schedules it and the
    references."""
    files = write_tiny_snapshot(tmp_path / "resources")  # in the run's dataset cache
    build_snapshot_index(files)  # the real loader accepts the tiny snapshot
    _tiny_workflow(tmp_path, {"source": "snapshot"}, data={"download": False})
    proc = _snakemake(tmp_path, TARGET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _snakemake(tmp_path, "-n", TARGET)
    assert (proc.returncode == 0
            and "Nothing to be done" in proc.stdout + proc.stderr), proc.stdout[-2000:]
    time.sleep(1.1)  # a newer modification time, as an edit or a fresh download gives
    formation = files["formation"]
    formation.write_bytes(formation.read_bytes())  # same content, newer time: nothing to redo
    proc = _snakemake(tmp_path, "-n", TARGET)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-2000:]
    pd.DataFrame({"task_id": ["mp-6930"], "formation_energy_per_atom": [-3.2]}).to_csv(
        formation, index=False)
    proc = _snakemake(tmp_path, "-n", TARGET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("rule snapshot_index:" in proc.stdout
            and "rule references:" in proc.stdout), proc.stdout[-2000:]
