"""Seeds and content hashes: the same identity gives the same number on any machine.

Example:
    >>> derive_seed(0, "astronaut.png", "ifgsm") == derive_seed(0, "astronaut.png", "ifgsm")
    True
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 16) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``obj``'s canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


def derive_seed(master: int, *parts: Any) -> int:
    """A 31-bit seed that depends only on the master seed and the given identity parts."""
    h = hashlib.sha256(canonical_json([master, *parts]).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF
