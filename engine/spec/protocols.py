"""The evaluation protocols' names (what they do: :mod:`engine.evaluation.protocol`)."""
from __future__ import annotations

PROTOCOLS = ("lab", "msu")
DEFAULT_PROTOCOL = "lab"


def check_protocol(name: str) -> str:
    """``name`` if it is a known protocol.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return name
