"""The training commands' choices and defaults (no torch: the CLI's parser reads them)."""
from __future__ import annotations

#: robust fine-tuning methods of :func:`engine.training.robust.train_robust`
METHODS = ("none", "at", "free-at", "at-corrected", "nt")
DEFAULT_TRAIN_ATTACK = "pgd:eps=4/255:alpha=1/255:iters=5"
DEFAULT_VAL_ATTACK = "ifgsm:eps=4/255:alpha=1/255:iters=10"
#: subjective-score layouts :mod:`engine.training.mos_formats` reads
MOS_FORMATS = ("auto", "mos-csv", "koniq10k", "kadid10k", "spaq", "livec", "pipal", "agiqa3k")
