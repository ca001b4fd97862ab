"""Defence registry. Importing this package registers every defence module in it."""
from __future__ import annotations

import importlib
import pkgutil

from engine.defences.base import DEFENCES, Defence, DefenceError

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base",) and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["DEFENCES", "Defence", "DefenceError"]
