"""External datasets: the registry in ``data/registry.yaml`` and fetching into a local cache.

A dataset is cached as ``<cache_dir>/<key>/<public file name>`` and always holds the public
file's bytes, checked against the registry's SHA-256. ``fetch`` takes, in this order:

1. the cached file when its SHA-256 matches (a mismatching one is removed, logged, and fetched
   again);
2. a copy from a mirror folder laid out like the project's offline data folder: the ``mirror``
   argument (the workflow passes config ``data.mirror``), else the environment variable
   ``VITRIFLOW_DATA_MIRROR``. A mirror copy that is a gzip or a text-normalised copy of the public
   file is restored first; a mirror file whose result fails the checksum is an error, not a
   reason to download;
3. a download with pooch from the pinned public URL (the member of an sdist is extracted with
   ``pooch.Untar``).

Files are written beside the final path and renamed into place only once verified. Every
failure raises :class:`DatasetError` with a one-line message naming the dataset key and the URL
or mirror path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

log = logging.getLogger("vitriflow.datasets")

REGISTRY_PATH = Path(__file__).resolve().parents[2] / "data" / "registry.yaml"
MIRROR_ENV = "VITRIFLOW_DATA_MIRROR"
DEFAULT_CACHE_DIR = "resources"
SOURCE_KINDS = ("github", "pypi_sdist")
MIRROR_RELATIONS = ("identical", "gzip", "bom_crlf_stripped")
_REQUIRED = ("file", "what", "sha256", "source", "licence", "citation")
_SOURCE_REQUIRED = {
    "github": ("repo", "commit", "path", "url"),
    "pypi_sdist": ("package", "version", "url", "archive_sha256", "member"),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_BOM = b"\xef\xbb\xbf"


class DatasetError(RuntimeError):
    """A dataset that cannot be fetched or a registry that is not valid (one-line message)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One registry entry. ``url`` is what is downloaded: the file itself, or for an sdist the
    archive (checked against ``archive_sha256``) whose ``member`` is the file."""

    key: str
    file: str
    what: str
    sha256: str
    url: str
    kind: str
    source: Mapping[str, str]
    licence: str
    citation: str
    member: str | None = None
    archive_sha256: str | None = None
    mirror_path: str | None = None
    mirror_relation: str = "identical"


# ----------------------------------------------------------------------------- registry
def load_registry(path: str | os.PathLike | None = None) -> dict[str, Dataset]:
    """Read and validate the registry; errors name the file, the entry and the key."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DatasetError(f"dataset registry {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        raise DatasetError(f"dataset registry {path}: not valid YAML ({msg})") from None
    entries = raw.get("datasets") if isinstance(raw, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise DatasetError(f"dataset registry {path}: expected a non-empty mapping 'datasets:'")
    return {key: _entry(path, key, spec) for key, spec in entries.items()}


def _entry(path: Path, key: Any, spec: Any) -> Dataset:
    where = f"dataset registry {path}: datasets.{key}"

    def fail(field: str, expected: str, got: Any) -> DatasetError:
        return DatasetError(f"{where}.{field}: expected {expected}, got {got!r}")

    if not isinstance(key, str) or not _KEY.match(key):
        raise DatasetError(f"{where}: key must match {_KEY.pattern}")
    if not isinstance(spec, dict):
        raise fail("", "a mapping", spec)
    for field in _REQUIRED:
        if field not in spec:
            raise DatasetError(f"{where}: missing key '{field}'")
    for field in ("file", "what", "licence", "citation"):
        if not isinstance(spec[field], str) or not spec[field].strip():
            raise fail(field, "a non-empty string", spec[field])
    file = spec["file"]
    if "/" in file or "\\" in file or file in (".", ".."):
        raise fail("file", "a plain file name", file)
    sha = spec["sha256"]
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise fail("sha256", "64 lower-case hex digits", sha)

    src = spec["source"]
    if not isinstance(src, dict):
        raise fail("source", "a mapping", src)
    kind = src.get("kind")
    if kind not in SOURCE_KINDS:
        raise fail("source.kind", " or ".join(SOURCE_KINDS), kind)
    for field in _SOURCE_REQUIRED[kind]:
        if not isinstance(src.get(field), str) or not src[field]:
            raise fail(f"source.{field}", "a non-empty string", src.get(field))
    member = archive_sha = None
    if kind == "github":
        if not re.fullmatch(r"[0-9a-f]{40}", src["commit"]):
            raise fail("source.commit", "a 40-hex-digit commit", src["commit"])
        expected_url = (f"https://raw.githubusercontent.com/{src['repo']}/{src['commit']}/"
                        f"{src['path']}")
        if src["url"] != expected_url:
            raise fail("source.url", expected_url, src["url"])
        if PurePosixPath(src["path"]).name != file:
            raise fail("file", f"the public file name {PurePosixPath(src['path']).name!r}", file)
    else:
        archive = f"{src['package']}-{src['version']}.tar.gz"
        if not src["url"].startswith("https://") or not src["url"].endswith("/" + archive):
            raise fail("source.url", f"an https URL of {archive}", src["url"])
        archive_sha, member = src["archive_sha256"], src["member"]
        if not _SHA256.match(archive_sha):
            raise fail("source.archive_sha256", "64 lower-case hex digits", archive_sha)
        if not member.startswith(f"{src['package']}-{src['version']}/"):
            raise fail("source.member", f"a path under {src['package']}-{src['version']}/", member)
        if PurePosixPath(member).name != file:
            raise fail("file", f"the member's file name {PurePosixPath(member).name!r}", file)

    mirror_path, relation = None, "identical"
    if spec.get("mirror") is not None:
        mirror = spec["mirror"]
        if not isinstance(mirror, dict):
            raise fail("mirror", "a mapping with path and relation", mirror)
        mirror_path, relation = mirror.get("path"), mirror.get("relation")
        mp = PurePosixPath(mirror_path) if isinstance(mirror_path, str) else None
        if mp is None or mp.is_absolute() or ".." in mp.parts or not mirror_path:
            raise fail("mirror.path", "a relative path inside the mirror", mirror_path)
        if relation not in MIRROR_RELATIONS:
            raise fail("mirror.relation", " or ".join(MIRROR_RELATIONS), relation)
    return Dataset(key=key, file=file, what=" ".join(spec["what"].split()), sha256=sha,
                   url=src["url"], kind=kind, source=dict(src), licence=spec["licence"],
                   citation=" ".join(spec["citation"].split()), member=member,
                   archive_sha256=archive_sha, mirror_path=mirror_path, mirror_relation=relation)


def _get(key: str, registry: Mapping[str, Dataset] | None) -> Dataset:
    reg = load_registry() if registry is None else registry
    if key not in reg:
        raise DatasetError(f"unknown dataset {key!r}; the registry has {sorted(reg)}")
    return reg[key]


def dataset_path(key: str, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                 registry: Mapping[str, Dataset] | None = None) -> Path:
    """Where ``fetch`` puts ``key``: ``<cache_dir>/<key>/<public file name>``."""
    return Path(cache_dir) / key / _get(key, registry).file


def describe(registry: Mapping[str, Dataset] | None = None) -> list[dict[str, str]]:
    """One row per dataset (key, file, what, source, licence, citation) for reports and docs."""
    reg = load_registry() if registry is None else registry
    rows = []
    for ds in reg.values():
        source = ds.url if ds.member is None else f"{ds.url} (member {ds.member})"
        rows.append({"key": ds.key, "file": ds.file, "what": ds.what, "source": source,
                     "licence": ds.licence, "citation": ds.citation})
    return rows


def provenance(key: str, registry: Mapping[str, Dataset] | None = None) -> dict[str, Any]:
    """What to record beside results computed from ``key``: source, pins, checksum, licence."""
    ds = _get(key, registry)
    out: dict[str, Any] = {"key": ds.key, "file": ds.file, "sha256": ds.sha256, "url": ds.url}
    out.update({k: v for k, v in ds.source.items() if k != "url"})
    out.update({"licence": ds.licence, "citation": ds.citation,
                "mirror_path": ds.mirror_path, "mirror_relation": ds.mirror_relation})
    return out


# ----------------------------------------------------------------------------- fetching
def fetch(key: str, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
          mirror: str | os.PathLike | None = None,
          registry: Mapping[str, Dataset] | None = None, timeout: float = 60.0) -> Path:
    """The verified local copy of dataset ``key`` (see the module docstring for the order).

    ``mirror`` wins over ``$VITRIFLOW_DATA_MIRROR``; ``registry`` (default: the project's) lets a
    caller point an entry at another URL, e.g. a local server.
    """
    ds = _get(key, registry)
    target = Path(cache_dir) / key / ds.file
    if target.is_file():
        actual = _sha256(target)
        if actual == ds.sha256:
            return target
        log.warning("dataset %s: cached %s has sha256 %s, expected %s; removed, fetching again",
                    key, target, actual, ds.sha256)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fill(ds, target, mirror, timeout)
    except BaseException:
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # only if empty: leave no trace of a failed fetch
        raise
    return target


def _fill(ds: Dataset, target: Path, mirror: str | os.PathLike | None, timeout: float) -> None:
    key = ds.key
    mirror_dir = _mirror_dir(mirror)
    mirror_note = "no mirror set"
    if mirror_dir is not None:
        if not mirror_dir.is_dir():
            raise DatasetError(f"dataset {key}: data mirror {mirror_dir} is not a folder")
        src = mirror_dir / ds.mirror_path if ds.mirror_path else None
        if src is not None and src.is_file():
            _copy_from_mirror(ds, src, target)
            log.info("dataset %s: copied from mirror %s to %s", key, src, target)
            return
        mirror_note = (f"mirror {mirror_dir} has no {ds.mirror_path}" if ds.mirror_path
                       else f"no mirror path registered (mirror {mirror_dir})")
        log.info("dataset %s: %s; downloading %s", key, mirror_note, ds.url)
    _download(ds, target, timeout, mirror_note)
    log.info("dataset %s: downloaded %s to %s", key, ds.url, target)


def _mirror_dir(mirror: str | os.PathLike | None) -> Path | None:
    if mirror is not None and str(mirror) != "":
        return Path(mirror).expanduser()
    env = os.environ.get(MIRROR_ENV, "")
    return Path(env).expanduser() if env else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _checksum_error(ds: Dataset, where: str, actual: str) -> DatasetError:
    return DatasetError(f"dataset {ds.key}: {where}: sha256 mismatch, expected {ds.sha256}, "
                        f"got {actual}")


def _copy_from_mirror(ds: Dataset, src: Path, target: Path) -> None:
    """Restore the public bytes from the mirror copy beside ``target``, verify, rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{ds.file}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if ds.mirror_relation == "gzip":
                try:
                    with gzip.open(src, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
                except (OSError, EOFError) as exc:
                    raise DatasetError(f"dataset {ds.key}: mirror {src}: not a readable gzip "
                                       f"file ({exc})") from None
            elif ds.mirror_relation == "bom_crlf_stripped":
                data = src.read_bytes()
                data = data[:-1] if data.endswith(b"\n") else data
                out.write(_BOM + data.replace(b"\n", b"\r\n"))
            else:
                with open(src, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        actual = _sha256(tmp)
        if actual != ds.sha256:
            raise _checksum_error(ds, f"mirror {src} ({ds.mirror_relation})", actual)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _download(ds: Dataset, target: Path, timeout: float, mirror_note: str) -> None:
    """Download with pooch into a staging folder beside ``target``; move the verified file in."""
    import pooch
    import requests

    staging = Path(tempfile.mkdtemp(prefix=f".{ds.file}.", suffix=".download", dir=target.parent))
    downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    try:
        if ds.member is None:
            got = Path(pooch.retrieve(ds.url, known_hash=f"sha256:{ds.sha256}", fname=ds.file,
                                      path=staging, downloader=downloader))
        else:
            archive = ds.url.rsplit("/", 1)[-1]
            pooch.retrieve(ds.url, known_hash=f"sha256:{ds.archive_sha256}", fname=archive,
                           path=staging, downloader=downloader,
                           processor=pooch.Untar(members=[ds.member], extract_dir="untar"))
            got = staging / "untar" / ds.member
            if not got.is_file():
                raise DatasetError(f"dataset {ds.key}: archive {ds.url} has no member {ds.member}")
        actual = _sha256(got)
        if actual != ds.sha256:
            where = ds.url if ds.member is None else f"{ds.url} member {ds.member}"
            raise _checksum_error(ds, where, actual)
        os.replace(got, target)
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "error"
        reason = exc.response.reason if exc.response is not None else exc
        raise DatasetError(f"dataset {ds.key}: download of {ds.url} failed: HTTP {status} "
                           f"({reason})") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise DatasetError(
            f"dataset {ds.key}: cannot download {ds.url} ({type(exc).__name__}) and {mirror_note}; "
            f"without network, set config data.mirror or ${MIRROR_ENV} to a data mirror holding "
            f"{ds.mirror_path or ds.file}, or put the file (sha256 {ds.sha256}) at {target}"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise DatasetError(f"dataset {ds.key}: download of {ds.url} failed "
                           f"({type(exc).__name__})") from None
    except ValueError as exc:  # pooch's checksum check of the downloaded file
        found = re.search(r"expected (?:sha256:)?([0-9a-f]{64}) but got ([0-9a-f]{64})", str(exc))
        if found is None:
            raise DatasetError(f"dataset {ds.key}: download of {ds.url} failed "
                               f"({' '.join(str(exc).split())})") from None
        what = "archive " if ds.member is not None else ""
        raise DatasetError(f"dataset {ds.key}: {what}{ds.url}: sha256 mismatch, expected "
                           f"{found.group(1)}, got {found.group(2)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------- availability
@dataclasses.dataclass(frozen=True)
class Located:
    """Where dataset ``key`` will come from for a run: ``path`` is the cache file the fetch rule
    makes (None when no source can serve it, ``how`` then saying how to get the data)."""

    key: str
    path: Path | None
    how: str


_REACHABLE: dict[str, bool] = {}


def _reachable(url: str, timeout: float) -> bool:
    """Can this machine open a connection to ``url``'s host? (asked once per host per process)"""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    if host not in _REACHABLE:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            _REACHABLE[host] = True
        except OSError:
            _REACHABLE[host] = False
    return _REACHABLE[host]


def locate(key: str, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
           mirror: str | os.PathLike | None = None, download: bool = True,
           registry: Mapping[str, Dataset] | None = None, timeout: float = 3.0) -> Located:
    """Which source ``fetch`` would use, decided without fetching (the DAG asks before it plans
    the stages that read the data): the cache, the mirror, or a download when the public host
    answers. A dataset no source can serve gets ``path=None`` and one line on how to get it."""
    ds = _get(key, registry)
    target = Path(cache_dir) / key / ds.file
    if target.is_file():
        return Located(key, target, "cache")
    mirror_dir = _mirror_dir(mirror)
    if mirror_dir is not None and ds.mirror_path and (mirror_dir / ds.mirror_path).is_file():
        return Located(key, target, f"mirror {mirror_dir / ds.mirror_path}")
    if download and _reachable(ds.url, timeout):
        return Located(key, target, f"download {ds.url}")
    where = (f"the mirror {mirror_dir} has no {ds.mirror_path}" if mirror_dir is not None
             else "no data mirror is set")
    net = "downloads are off (data.download)" if not download else f"{ds.url} cannot be reached"
    return Located(key, None, (
        f"dataset {key} ({ds.file}) is not available: {where} and {net}; set config data.mirror "
        f"or ${MIRROR_ENV} to a folder holding {ds.mirror_path or ds.file}, or put the file "
        f"(sha256 {ds.sha256[:12]}...) at {target}"))
