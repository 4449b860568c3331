"""Structure identity: ids and seeds that depend only on where a cell sits in the config."""

from __future__ import annotations

import hashlib


def structure_seed(master_seed: int, system: str, composition_index: int, replica: int) -> int:
    """Deterministic 31-bit seed per structure, independent of job order and batching."""
    key = f"{master_seed}:{system}:{composition_index}:{replica}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF


def structure_id(system: str, composition_index: int, replica: int) -> str:
    return f"{system}-c{composition_index:04d}-r{replica:02d}"
