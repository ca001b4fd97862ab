"""What identifies a unit of work: what determines its numbers, nothing else.

A unit is one image attacked on one metric (and, in ``adaptive`` mode, through one target
defence); its rows are one per defence. Its id hashes:

- the image's decoded pixel content (:class:`Contents` ``images``; a re-saved identical
  PNG, a copy or a symbolic link are the same image; a changed picture under the same
  name is new work),
- the metric with its parameters and the hash of a ``weights=`` file it names,
- the attack with its parameters, the target defence (adaptive) and the EOT draws,
- the master seed (the unit's own seed is derived from this identity, so two
  experiments that share a unit compute it with the same seed),
- the evaluation protocol and the budget the rows are measured against,
- :func:`compute_version`: this code's version of the numbers. A release that changes
  what a unit computes raises :data:`COMPUTE_VERSION`; its units are then new work and
  the rows of the older release are never shown as theirs (they stay in the store,
  readable under their own experiment ids: ``python main.py export OUT --experiment ID``).

The defences are not part of a unit's id: each row is keyed by (unit, defence), so a
defence added later computes only its own rows.

Example:
    >>> c = Contents(images={"a.png": "1f2e"}, weights={})
    >>> c.image("a.png"), c.image("b.png")
    ('1f2e', None)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.core.seeds import short_hash

#: raised by a release that changes the numbers a unit computes (see the module doc)
COMPUTE_VERSION = 1


@lru_cache(maxsize=1)
def compute_version() -> str:
    """This code's version of the numbers: :data:`COMPUTE_VERSION` and the installed
    pyiqa (whose metrics compute most scores); read without importing pyiqa."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pyiqa = version("pyiqa")
    except PackageNotFoundError:
        pyiqa = "none"
    return f"{COMPUTE_VERSION}+pyiqa-{pyiqa}"


@dataclass(frozen=True)
class Contents:
    """The content hashes a run's units are identified by.

    Attributes:
        images: image path → hash of its decoded pixels (absent: not readable; such an
            image's unit is identified by its name and always tried again).
        weights: metric key → hash of the ``weights=`` file it names (absent: none named).
    """

    images: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)

    def image(self, path: str) -> str | None:
        return self.images.get(path)


def unit_identity(*, content: str, metric_key: str, weights: str | None, attack_key: str,
                  target_key: str | None, exp_fields: dict[str, Any]) -> list[Any]:
    """The parts a unit's id and seed are derived from (see the module doc)."""
    return [compute_version(), content, metric_key, weights, attack_key, target_key,
            sorted(exp_fields.items())]


def unit_id(parts: list[Any]) -> str:
    return short_hash(["unit", *parts])
