"""Units by content: hash the images (and weights files) of an experiment, find what the
store already holds, and what is left to compute.

:func:`contents` decodes each image once and hashes its pixels (cached in the store by
path, size and modification time, so a second plan of an unchanged folder reads no
image); :func:`reuse_plan` splits an experiment's items into those the store holds for
every defence (reused, from any experiment), those it holds for some defences (only the
new defences' rows are computed, see below) and new ones.

A defence added later needs the attacked image x_a. When the run that computed the unit
kept an exact float copy of it (``keep_attacked``, :mod:`engine.store.attacked`), the
item replays the stored attack (:mod:`engine.run.replay`): the new rows are computed from
the copy, the attack is not run. Otherwise — no copy, or one that is damaged — the attack
is computed again with the unit's seed (the same x_a for a deterministic attack on the
same device) and the plan says why. The 8-bit PNG of ``--save-images`` is never used in
place of x_a: it is not the attack's float output. The unit's stored rows are not touched.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from engine.spec.experiment import Experiment, WorkItem
from engine.spec.identity import Contents
from engine.spec.recipes import file_sha256


#: (absolute path, size, mtime_ns, max_pixels) → hash, for this process (the GUI re-plans often)
_MEMO: dict[tuple[str, int, int, int], str | None] = {}


def image_hash(path: str, max_pixels: int) -> str | None:
    """SHA-256 of the decoded image (shape, float pixels and conversion note); None when
    it cannot be read (its item then fails with the reason, under its own name)."""
    stamp = _stamp(path)
    key = (os.path.abspath(path), *stamp, max_pixels) if stamp is not None else None
    if key is not None and key in _MEMO:
        return _MEMO[key]
    digest = _decode_hash(path, max_pixels)
    if key is not None:
        _MEMO[key] = digest
    return digest


def _decode_hash(path: str, max_pixels: int) -> str | None:
    from engine.io.images import ImageLoadError, load_image

    try:
        loaded = load_image(path, max_pixels=max_pixels)
    except ImageLoadError:
        return None
    h = hashlib.sha256()
    h.update(repr(tuple(loaded.tensor.shape)).encode())
    h.update(loaded.tensor.numpy().tobytes())
    h.update(loaded.note.encode())
    return h.hexdigest()[:32]


def file_hash(path: str) -> str | None:
    """SHA-256 of a file's bytes (a metric's ``weights=`` file), 32 hex digits; None when
    unreadable. Cached by path, size and time (:func:`engine.spec.recipes.file_sha256`): a
    plan, the run and the manifest all ask for it."""
    try:
        return file_sha256(os.path.expanduser(path))[:32]
    except OSError:
        return None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows a link: the content is the target's
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def contents(exp: Experiment, store: Any = None, cache: dict[str, tuple[int, int, str]] | None = None) -> Contents:
    """The content hashes of ``exp``'s images and metric weights files.

    Args:
        exp: the experiment.
        store: an open :class:`~engine.store.db.ResultStore` whose ``contents`` table
            caches image hashes by (path, size, mtime); None: every image is decoded
            (once per process).
        cache: hashes read from a store before (``ResultStore.cached_hashes()``).
    """
    cache = store.cached_hashes() if store is not None else (cache or {})
    images: dict[str, str] = {}
    fresh: dict[str, tuple[int, int, str]] = {}
    for path in dict.fromkeys(exp.images):
        stamp = _stamp(path)
        if stamp is None:
            continue
        hit = cache.get(os.path.abspath(path))
        if hit is not None and hit[:2] == stamp:
            images[path] = hit[2]
            continue
        digest = image_hash(path, exp.max_pixels)
        if digest is not None:
            images[path] = digest
            fresh[os.path.abspath(path)] = (*stamp, digest)
    if fresh and store is not None and not getattr(store, "readonly", True):
        store.cache_hashes(fresh)
    weights = {}
    for m in exp.metrics:
        own = m.params.get("weights")
        if own:
            weights[m.key] = file_hash(str(own)) or f"missing:{own}"
    return Contents(images, weights)


@dataclass
class ReusePlan:
    """What running an experiment into a store computes and what it reuses.

    Attributes:
        items: every item of the experiment (ids by content).
        pending: what to compute, one item per unit (a link and its target once); an
            item of a unit stored for some defences carries only the missing ones, and
            its ``replay`` when its stored attack is reused.
        reused: items whose rows are all in the store (from this or any experiment).
        extended: ids of units stored for some defences, computed for the others.
        legacy: the experiment had rows made before content identity (not reused).
        replayed: ids of extended units whose attack is reused from a stored copy of x_a.
        why: id of an extended unit attacked again → why its stored attack is not reused.
    """

    items: list[WorkItem]
    pending: list[WorkItem]
    reused: int
    extended: set[str] = field(default_factory=set)
    legacy: bool = False
    replayed: set[str] = field(default_factory=set)
    why: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts for the manifest and the plan preview."""
        return {"items": len(self.items), "reused": self.reused, "to_compute": len(self.pending),
                "attacks_reused_from_stored": len(self.replayed),
                "attacks_recomputed_for_new_defences": len(self.extended) - len(self.replayed),
                "attacks_recomputed_why": dict(Counter(self.why.values()))}

    def lines(self) -> list[str]:
        """What to tell the user beyond the counts (stored attacks reused, or why not)."""
        out = []
        if self.replayed:
            out.append(f"{len(self.replayed)} attack(s) reused from stored attacked images (exact float "
                       "copies): only the new defences' rows are computed")
        for reason, n in Counter(self.why[u] for u in self.extended - self.replayed if u in self.why).items():
            out.append(f"{n} stored attack(s) computed again for new defences: {reason}; their stored "
                       "rows are kept")
        if self.legacy:
            out.append("this experiment's rows in the store were made by an earlier version (items "
                       "identified by file name); they are not reused, and stay readable as they were")
        return out


def reuse_plan(exp: Experiment, store: Any = None, known: Contents | None = None,
               verify: bool = False) -> ReusePlan:
    """Split ``exp``'s items into reused, extended and new (see :class:`ReusePlan`).

    Args:
        exp: the experiment.
        store: the open store (None: nothing is stored).
        known: content hashes already computed (default: :func:`contents`).
        verify: read every stored attacked image an extended unit would reuse and check
            its checksum (the driver, before it runs; the preview checks sizes only).
    """
    items = exp.items(known if known is not None else contents(exp, store))
    stored = store.stored_defences(it.id for it in items) if store is not None else {}
    pending: list[WorkItem] = []
    seen: set[str] = set()
    extended: set[str] = set()
    reused = 0
    for it in items:
        have = stored.get(it.id)
        missing = tuple(d for d in it.defences if have is None or d.label not in have)
        if not missing:
            reused += 1
            continue
        if it.id in seen:
            continue
        seen.add(it.id)
        if have is not None:
            extended.add(it.id)
            pending.append(replace(it, defences=missing))
        else:
            pending.append(it)
    legacy = store is not None and _had_legacy_rows(store, exp.id)
    plan = ReusePlan(items, pending, reused, extended, legacy)
    if extended:
        _attach_replays(plan, store, verify)
    return plan


def _attach_replays(plan: ReusePlan, store: Any, verify: bool) -> None:
    """Give the extended pending items whose stored attack can be reused their replay."""
    from engine.run.replay import find_replays

    replays, plan.why = find_replays([it for it in plan.pending if it.id in plan.extended], store, verify)
    plan.replayed = set(replays)
    plan.pending = [replace(it, replay=replays[it.id]) if it.id in replays else it for it in plan.pending]


def _had_legacy_rows(store: Any, exp_id: str) -> bool:
    try:
        return store.identity(exp_id) == "name" and bool(store.done_item_ids(exp_id))
    except Exception:  # noqa: BLE001 - an experiment the store does not hold
        return False


def content_items(exp: Experiment, store: Any = None,
                  cache: dict[str, tuple[int, int, str]] | None = None) -> list[WorkItem]:
    """``exp``'s items identified by content (what a run computes and stores)."""
    return exp.items(contents(exp, store, cache))
