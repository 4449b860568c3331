"""Dataset registry and fetching: mirror copies, pooch downloads from a local server, errors."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from vitriflow import datasets
from vitriflow.datasets import DatasetError, fetch, load_registry

REPO = Path(__file__).resolve().parents[1]
REGISTRY = load_registry()
EXPECTED_KEYS = {
    "mp_flla", "mp_formation", "mp_binary_structures", "mp_element_structures",
    "mp_element_entries", "dissolution_hamilton", "nimrod_silica_fq",
    "neutron_scattering_lengths", "xray_form_factors",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch):
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)


def entry(key: str, payload: bytes, **changes) -> dict[str, datasets.Dataset]:
    """A one-entry registry: the real entry ``key`` re-pointed at test bytes."""
    return {key: dataclasses.replace(REGISTRY[key], sha256=sha(payload), **changes)}


# ----------------------------------------------------------------------------- registry
def test_registry_has_every_dataset_with_pinned_sources():
    assert set(REGISTRY) == EXPECTED_KEYS
    for key, ds in REGISTRY.items():
        assert re.fullmatch(r"[0-9a-f]{64}", ds.sha256), key
        assert ds.licence and ds.citation and ds.what, key
        assert ds.mirror_path and ds.mirror_relation in datasets.MIRROR_RELATIONS, key
        if ds.kind == "github":
            src = ds.source
            assert ds.url == (f"https://raw.githubusercontent.com/{src['repo']}/{src['commit']}/"
                              f"{src['path']}")
            assert ds.url.endswith("/" + ds.file)
        else:
            assert ds.kind == "pypi_sdist" and ds.url.startswith("https://files.pythonhosted.org/")
            assert re.fullmatch(r"[0-9a-f]{64}", ds.archive_sha256)
            assert ds.member.endswith("/" + ds.file)
    assert {ds.mirror_relation for ds in REGISTRY.values()} == set(datasets.MIRROR_RELATIONS)
    rows = datasets.describe()
    assert [r["key"] for r in rows] == list(REGISTRY)
    assert "member matminer-0.3.9/matminer/datasets/flla_2015.csv" in rows[0]["source"]
    prov = datasets.provenance("nimrod_silica_fq")
    assert prov["commit"] == "7c92afa423bc181e5c23e2ef92b6a9b3a32eb04e"
    assert prov["sha256"] == REGISTRY["nimrod_silica_fq"].sha256
    json.dumps(prov)  # recordable as provenance


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda e: e.update(sha256="ABC"), "datasets.mp_formation.sha256: expected 64 lower-case hex"),
    (lambda e: e.pop("licence"), "datasets.mp_formation: missing key 'licence'"),
    (lambda e: e["source"].update(commit="0" * 40), "datasets.mp_formation.source.url: expected"),
    (lambda e: e["mirror"].update(relation="zip"), "datasets.mp_formation.mirror.relation"),
    (lambda e: e["mirror"].update(path="../x.csv"), "datasets.mp_formation.mirror.path"),
    (lambda e: e.update(file="other.csv"), "datasets.mp_formation.file: expected the public"),
    (lambda e: e["source"].update(kind="zenodo"), "datasets.mp_formation.source.kind"),
])
def test_registry_errors_name_the_entry_and_key(tmp_path, mutate, expected):
    raw = yaml.safe_load(datasets.REGISTRY_PATH.read_text())
    mutate(raw["datasets"]["mp_formation"])
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DatasetError) as exc:
        load_registry(path)
    msg = one_line(exc)
    assert str(path) in msg and expected in msg


def test_unknown_key_names_the_known_ones(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown dataset 'nimrod'.*nimrod_silica_fq"):
        fetch("nimrod", cache_dir=tmp_path)


# ----------------------------------------------------------------------------- mirror
@pytest.mark.parametrize("key", sorted(EXPECTED_KEYS))
def test_fetch_from_the_mirror_gives_the_public_bytes(shared_data, tmp_path, key):
    ds = REGISTRY[key]
    path = fetch(key, cache_dir=tmp_path, mirror=shared_data)
    assert path == tmp_path / key / ds.file
    assert sha(path.read_bytes()) == ds.sha256
    assert files_under(tmp_path) == [path]  # nothing left beside it
    mirror_bytes = (shared_data / ds.mirror_path).read_bytes()
    assert (mirror_bytes == path.read_bytes()) == (ds.mirror_relation == "identical")
    # a verified cached file is returned without consulting any mirror
    assert fetch(key, cache_dir=tmp_path, mirror=tmp_path / "absent") == path


def test_gzip_and_text_mirrors_are_restored_to_the_public_bytes(tmp_path):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    csv = b"task_id,composition,formation_energy_per_atom\nmp-1,SiO2,-3.1\n"
    public_txt = b"\xef\xbb\xbfIsotope;b\r\nO;5,80\r\nSi;4,15"
    reg = entry("mp_formation", csv) | entry("neutron_scattering_lengths", public_txt)
    for ds, data in ((reg["mp_formation"], gzip.compress(csv)),
                     (reg["neutron_scattering_lengths"], b"Isotope;b\nO;5,80\nSi;4,15\n")):
        (mirror / ds.mirror_path).parent.mkdir(parents=True, exist_ok=True)
        (mirror / ds.mirror_path).write_bytes(data)
    assert fetch("mp_formation", cache, mirror, registry=reg).read_bytes() == csv
    got = fetch("neutron_scattering_lengths", cache, mirror, registry=reg).read_bytes()
    assert got == public_txt


def test_corrupt_mirror_file_is_refused_and_leaves_nothing(tmp_path):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    ds = REGISTRY["dissolution_hamilton"]
    bad = mirror / ds.mirror_path
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the spreadsheet")
    with pytest.raises(DatasetError) as exc:
        fetch("dissolution_hamilton", cache_dir=cache, mirror=mirror)
    msg = one_line(exc)
    for part in ("dissolution_hamilton", str(bad), ds.sha256, sha(b"not the spreadsheet")):
        assert part in msg
    assert files_under(cache) == []


def test_unreadable_gzip_in_the_mirror_is_one_line(tmp_path):
    mirror = tmp_path / "mirror"
    bad = mirror / REGISTRY["mp_formation"].mirror_path
    bad.parent.mkdir(parents=True)
    bad.write_bytes(gzip.compress(b"task_id\nmp-1\n")[:-9])  # truncated
    with pytest.raises(DatasetError) as exc:
        fetch("mp_formation", cache_dir=tmp_path / "cache", mirror=mirror)
    assert "mp_formation" in one_line(exc) and "not a readable gzip" in str(exc.value)
    assert files_under(tmp_path / "cache") == []


def test_mirror_argument_wins_over_the_environment(tmp_path, monkeypatch):
    payload = b"Q F err\n"
    reg = entry("nimrod_silica_fq", payload)
    good, corrupt = tmp_path / "good", tmp_path / "corrupt"
    for root, data in ((good, payload), (corrupt, b"other")):
        (root / reg["nimrod_silica_fq"].mirror_path).parent.mkdir(parents=True)
        (root / reg["nimrod_silica_fq"].mirror_path).write_bytes(data)
    monkeypatch.setenv(datasets.MIRROR_ENV, str(corrupt))
    assert fetch("nimrod_silica_fq", tmp_path / "c1", good, registry=reg).read_bytes() == payload
    with pytest.raises(DatasetError, match=str(corrupt)):  # no argument: the variable is used
        fetch("nimrod_silica_fq", tmp_path / "c2", registry=reg)
    monkeypatch.setenv(datasets.MIRROR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="nowhere is not a folder"):
        fetch("nimrod_silica_fq", tmp_path / "c3", registry=reg)


def test_cached_file_with_wrong_checksum_is_fetched_again(tmp_path, caplog):
    payload = b"Element,a1\r\nO,3.05\r\n"
    reg = entry("xray_form_factors", payload, mirror_relation="identical")
    mirror = tmp_path / "mirror"
    (mirror / reg["xray_form_factors"].mirror_path).parent.mkdir(parents=True)
    (mirror / reg["xray_form_factors"].mirror_path).write_bytes(payload)
    stale = tmp_path / "cache" / "xray_form_factors" / reg["xray_form_factors"].file
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    with caplog.at_level(logging.WARNING, logger="vitriflow.datasets"):
        assert fetch("xray_form_factors", tmp_path / "cache", mirror, registry=reg) == stale
    assert stale.read_bytes() == payload
    assert sha(b"stale") in caplog.text and "fetching again" in caplog.text


# ----------------------------------------------------------------------------- download
class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A folder served on 127.0.0.1 (random port): yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_of_a_good_file(http_root, tmp_path):
    root, base = http_root
    payload = b"# NIMROD\n  0.1 0.5 0.01\n"
    (root / "SiO2_NIMROD.mint01").write_bytes(payload)
    reg = entry("nimrod_silica_fq", payload, url=f"{base}/SiO2_NIMROD.mint01")
    path = fetch("nimrod_silica_fq", cache_dir=tmp_path / "cache", registry=reg)
    assert path.read_bytes() == payload
    assert files_under(tmp_path / "cache") == [path]
    assert list((tmp_path / "cache" / "nimrod_silica_fq").iterdir()) == [path]  # no staging left


def test_download_of_the_public_file_with_the_registry_checksum(shared_data, http_root, tmp_path):
    root, base = http_root
    ds = REGISTRY["nimrod_silica_fq"]
    (root / ds.file).write_bytes((shared_data / ds.mirror_path).read_bytes())
    reg = {ds.key: dataclasses.replace(ds, url=f"{base}/{ds.file}")}
    path = fetch(ds.key, cache_dir=tmp_path / "cache", registry=reg)
    assert sha(path.read_bytes()) == ds.sha256


def test_download_with_a_wrong_checksum_leaves_nothing(http_root, tmp_path):
    root, base = http_root
    (root / "Data.xlsx").write_bytes(b"tampered")
    url = f"{base}/Data.xlsx"
    reg = entry("dissolution_hamilton", b"the real bytes", url=url)
    with pytest.raises(DatasetError) as exc:
        fetch("dissolution_hamilton", cache_dir=tmp_path / "cache", registry=reg)
    msg = one_line(exc)
    for part in ("dissolution_hamilton", url, sha(b"the real bytes"), sha(b"tampered")):
        assert part in msg
    assert files_under(tmp_path / "cache") == []


def test_download_404_names_the_url(http_root, tmp_path):
    _, base = http_root
    url = f"{base}/missing/Data.xlsx"
    reg = entry("dissolution_hamilton", b"x", url=url)
    with pytest.raises(DatasetError) as exc:
        fetch("dissolution_hamilton", cache_dir=tmp_path / "cache", registry=reg)
    msg = one_line(exc)
    assert url in msg and "HTTP 404" in msg and "dissolution_hamilton" in msg
    assert files_under(tmp_path / "cache") == []


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_download_of_a_member_of_an_sdist(http_root, tmp_path):
    root, base = http_root
    csv = b"# ref: test\nmaterial_id,formula\nmp-1,{'Si': 1.0}\n"
    member = "pkg-1.0/pkg/datasets/flla_2015.csv"
    archive = _tarball({"pkg-1.0/setup.py": b"", member: csv})
    (root / "pkg-1.0.tar.gz").write_bytes(archive)
    url = f"{base}/pkg-1.0.tar.gz"
    reg = entry("mp_flla", csv, url=url, member=member, archive_sha256=sha(archive))
    path = fetch("mp_flla", cache_dir=tmp_path / "cache", registry=reg)
    assert path.read_bytes() == csv
    assert files_under(tmp_path / "cache") == [path]  # archive and extraction folder removed
    # a member that is not in the archive, and a member with other bytes than registered
    missing = {"mp_flla": dataclasses.replace(reg["mp_flla"], member="pkg-1.0/flla_2015.csv")}
    with pytest.raises(DatasetError, match="has no member pkg-1.0/flla_2015.csv"):
        fetch("mp_flla", cache_dir=tmp_path / "c2", registry=missing)
    wrong = {"mp_flla": dataclasses.replace(reg["mp_flla"], sha256=sha(b"other"))}
    with pytest.raises(DatasetError) as exc:
        fetch("mp_flla", cache_dir=tmp_path / "c3", registry=wrong)
    assert member in one_line(exc) and sha(csv) in str(exc.value)
    assert files_under(tmp_path / "c2") == [] and files_under(tmp_path / "c3") == []


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/SiO2_NIMROD.mint01"


def test_no_network_and_no_mirror_says_how_to_get_the_data(tmp_path):
    url = _closed_port_url()
    reg = entry("nimrod_silica_fq", b"x", url=url)
    with pytest.raises(DatasetError) as exc:
        fetch("nimrod_silica_fq", cache_dir=tmp_path / "cache", registry=reg, timeout=5)
    msg = one_line(exc)
    for part in ("nimrod_silica_fq", url, "no mirror set", "data.mirror", datasets.MIRROR_ENV,
                 reg["nimrod_silica_fq"].mirror_path):
        assert part in msg
    assert files_under(tmp_path / "cache") == []
    # a mirror without the file: said so in the same line
    (tmp_path / "mirror").mkdir()
    with pytest.raises(DatasetError, match=r"mirror .*mirror has no structure_reference/"):
        fetch("nimrod_silica_fq", tmp_path / "cache", tmp_path / "mirror", registry=reg, timeout=5)


# ----------------------------------------------------------------------------- Snakemake rule
def test_fetch_dataset_rule_fills_the_cache(shared_data, tmp_path):
    """The workflow's fetch_dataset rule, asked for one dataset by its cache path, copies it from
    the mirror the config names."""
    from workflow_helpers import TINY, write_config

    write_config(tmp_path, {**TINY, "data": {"mirror": str(shared_data)}})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(datasets.MIRROR_ENV, None)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "-c1",
         "resources/nimrod_silica_fq/SiO2_NIMROD.mint01"],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "resources" / "nimrod_silica_fq" / "SiO2_NIMROD.mint01"
    assert sha(out.read_bytes()) == REGISTRY["nimrod_silica_fq"].sha256
    log = tmp_path / "logs" / "datasets" / "nimrod_silica_fq" / "SiO2_NIMROD.mint01.log"
    assert "copied from mirror" in log.read_text()
