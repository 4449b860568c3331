"""Files between stages: Parquet tables and extended-XYZ structures, each with provenance.

Every table written by vitriflow carries a provenance block (package versions, config hash,
input checksums, seed, free-form notes such as the data source that served it) in the
Parquet file metadata under the key ``vitriflow``. ``read_table`` returns it beside the frame.
Writes go to a temporary file first and are renamed into place, so a job killed mid-write
never leaves a truncated output that Snakemake would take as complete.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import logging
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_KEY = b"vitriflow"
_TRACKED_PACKAGES = (
    "vitriflow", "numpy", "torch", "torch-sim-atomistic", "sevenn", "ase", "pymatgen",
    "scikit-learn", "snakemake", "imelt", "gpaw", "vesin", "torch-geometric",
)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def structure_key(atoms) -> str:
    """Fingerprint of a cell's geometry (numbers, positions, cell, pbc): result caches keyed by
    structure id alone would hand old energies to new geometries after an upstream rerun."""
    import numpy as np

    h = hashlib.sha256(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    for arr in (atoms.positions, atoms.cell.array, atoms.pbc):
        h.update(np.asarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a (JSON-serialisable) config mapping."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions(names: Iterable[str] = _TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results (missing ones are omitted)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(
    *,
    stage: str,
    config: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    seed: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A provenance record: what made a result, from which inputs, with which software."""
    record: dict[str, Any] = {
        "stage": stage,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": package_versions(),
        "inputs": {str(p): sha256_file(p) for p in inputs if Path(p).is_file()},
    }
    if config is not None:
        record["config_hash"] = config_hash(config)
    if seed is not None:
        record["seed"] = int(seed)
    record.update(extra)
    return record


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a job killed mid-write (kill -9) leaves its temporary file behind: the next write of the
    # same output removes it (Snakemake's lock keeps two jobs from writing one output)
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        orphan.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs should be readable like any file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically and reproducibly: torch names the records of its zip after the
    file, so saving to the temporary file directly gave different bytes for the same object."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def save_checkpoint(path: str | os.PathLike, digest: str, payload: Mapping[str, Any]) -> None:
    """Atomically save ``payload`` (torch-serialisable) under ``digest``, a fingerprint of
    everything it depends on, so an interrupted job can take it back (MD segments, trained
    networks)."""
    save_torch({"digest": digest, **payload}, path)


def load_checkpoint(path: str | os.PathLike | None, digest: str,
                    weights_only: bool = True) -> dict[str, Any] | None:
    """The payload saved at ``path`` for the same ``digest``; None when absent, unreadable (a
    damaged file costs its progress, never the run) or saved for other settings or inputs.
    ``weights_only=False`` for payloads with NumPy arrays (vitriflow's own files only)."""
    import torch

    if path is None or not Path(path).is_file():
        return None
    log = logging.getLogger("vitriflow.io")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001
        log.warning("checkpoint %s unreadable (%s: %s); starting afresh",
                    path, type(exc).__name__, exc)
        return None
    if not isinstance(blob, dict) or blob.get("digest") != digest:
        log.warning("checkpoint %s was saved for other settings or inputs; starting afresh", path)
        return None
    return blob


def write_table(df: pd.DataFrame, path: str | os.PathLike, prov: Mapping[str, Any]) -> None:
    """Write ``df`` as Parquet with ``prov`` (JSON) in the file metadata, atomically."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(prov, default=str).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a vitriflow Parquet table and its provenance block ({} when absent)."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(PROVENANCE_KEY)
    prov = json.loads(raw) if raw else {}
    return table.to_pandas(), prov


CSV_PROVENANCE_PREFIX = "# vitriflow provenance: "


def write_csv(df: pd.DataFrame, path: str | os.PathLike, prov: Mapping[str, Any],
              float_format: str | None = None) -> None:
    """Write ``df`` as CSV, atomically, under one comment line holding ``prov`` (JSON).

    Spreadsheets show the line as a first row; ``read_csv`` below (or pandas with
    ``skiprows=1``) skips it."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(CSV_PROVENANCE_PREFIX + json.dumps(prov, sort_keys=True, default=str) + "\n")
            df.to_csv(fh, index=False, float_format=float_format)


def read_csv(path: str | os.PathLike, **kwargs: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV written by ``write_csv`` and its provenance ({} when it has none); ``kwargs``
    go to ``pandas.read_csv``."""
    with open(path) as fh:
        first = fh.readline()
    if not first.startswith(CSV_PROVENANCE_PREFIX):
        return pd.read_csv(path, **kwargs), {}
    return pd.read_csv(path, skiprows=1, **kwargs), json.loads(first[len(CSV_PROVENANCE_PREFIX):])


def provenance_comment(prov: Mapping[str, Any]) -> str:
    """``prov`` as an HTML comment to end a Markdown file (invisible when rendered)."""
    # '--' ends a comment
    body = json.dumps(prov, sort_keys=True, default=str).replace("--", "-\\u002d")
    return f"\n<!-- vitriflow provenance: {body} -->\n"


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically (a killed job leaves the old file or none, never half)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write JSON atomically (sorted keys, indented) so reruns give identical bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_structures(atoms_list, path: str | os.PathLike) -> None:
    """Write a list of ASE Atoms as extended XYZ (info and arrays kept), atomically.

    Empty-string info values are dropped: ASE's extxyz writer emits ``key=`` for them, which its
    reader then merges with the next key. Read such keys back with ``info.get(key, "")``. Per-atom
    arrays are written in sorted order, so the same structures give the same bytes.
    """
    from ase.io import write

    frames = []
    for atoms in atoms_list:
        a = atoms.copy()
        a.info = {k: v for k, v in atoms.info.items() if not (isinstance(v, str) and v == "")}
        # per-atom columns in a fixed order: pymatgen hands site properties over in set order,
        # which changes from one process to the next (string hashing)
        first = [k for k in ("numbers", "positions") if k in a.arrays]
        a.arrays = {k: a.arrays[k] for k in first + sorted(set(a.arrays) - set(first))}
        frames.append(a)
    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz")


def read_structures(path: str | os.PathLike) -> list:
    """Read every frame of an extended XYZ file as ASE Atoms."""
    from ase.io import read

    return list(read(path, index=":", format="extxyz"))


def read_structures_frame_by_frame(path: str | os.PathLike) -> list[tuple[Any, str]]:
    """Every frame of an extended XYZ file as ``(atoms, "")``, or ``(None, reason)`` for a frame
    that cannot be parsed, so that one damaged frame does not cost the others (ASE reads a file
    at once). Frames are found by their atom-count lines; where one is not a count, the rest of
    the file is one unreadable entry."""
    from ase.io import read

    lines = Path(path).read_text().splitlines(keepends=True)
    out: list[tuple[Any, str]] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            out.append((None, f"line {i + 1}: expected an atom count, got "
                              f"{lines[i].strip()[:40]!r}; the rest of the file is not read"))
            break
        chunk = "".join(lines[i:i + n + 2])
        try:
            out.append((read(io.StringIO(chunk), format="extxyz"), ""))
        except Exception as exc:  # noqa: BLE001 - ASE raises many types for a malformed frame
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            out.append((None, f"line {i + 1}: {first}"))
        i += n + 2
    return out
