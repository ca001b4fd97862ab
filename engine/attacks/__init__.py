"""Attack registry. Importing this package registers every attack module in it."""
from __future__ import annotations

import importlib
import pkgutil

from engine.attacks.base import ATTACKS, Attack, AttackOutcome, AttackParams, StepRecord, run_to_end

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("base", "sign_gradient") and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["ATTACKS", "Attack", "AttackOutcome", "AttackParams", "StepRecord", "run_to_end"]
