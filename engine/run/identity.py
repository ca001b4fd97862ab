"""Units by content: hash the images (and weights files) of an experiment, find what the
store already holds, and what is left to compute.

:func:`contents` decodes each image once and hashes its pixels (cached in the store by
path, size and modification time, so a second plan of an unchanged folder reads no
image); :func:`reuse_plan` splits an experiment's items into those the store holds for
every defence (reused, from any experiment), those it holds for some defences (only the
new defences' rows are computed; the attack is computed again, see below) and new ones.

A defence added later needs the attacked image. The store keeps only its 8-bit PNG
(``--save-images``), which is not the attack's float output, so the attack is computed
again with the unit's seed (the same x_a for a deterministic attack on the same device)
and the run says so; its other rows are not touched.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from engine.spec.experiment import Experiment, WorkItem
from engine.spec.identity import Contents


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
    """SHA-256 of a file's bytes (a metric's ``weights=`` file); None when unreadable."""
    h = hashlib.sha256()
    try:
        with open(os.path.expanduser(path), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()[:32]


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
            item of a unit stored for some defences carries only the missing ones.
        reused: items whose rows are all in the store (from this or any experiment).
        extended: ids of units stored for some defences, computed again for the others
            (their attack is computed again: see the module doc).
        legacy: the experiment had rows made before content identity (not reused).
    """

    items: list[WorkItem]
    pending: list[WorkItem]
    reused: int
    extended: set[str] = field(default_factory=set)
    legacy: bool = False

    def summary(self) -> dict[str, int]:
        """Counts for the manifest and the plan preview."""
        return {"items": len(self.items), "reused": self.reused, "to_compute": len(self.pending),
                "attacks_recomputed_for_new_defences": len(self.extended)}

    def lines(self) -> list[str]:
        """What to tell the user beyond the counts (why an attack is computed again)."""
        out = []
        if self.extended:
            out.append(f"{len(self.extended)} stored attack(s) computed again for new defences (the store "
                       "keeps no float copy of attacked images); their stored rows are kept")
        if self.legacy:
            out.append("this experiment's rows in the store were made by an earlier version (items "
                       "identified by file name); they are not reused, and stay readable as they were")
        return out


def reuse_plan(exp: Experiment, store: Any = None, known: Contents | None = None) -> ReusePlan:
    """Split ``exp``'s items into reused, extended and new (see :class:`ReusePlan`).

    Args:
        exp: the experiment.
        store: the open store (None: nothing is stored).
        known: content hashes already computed (default: :func:`contents`).
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
            pending.append(WorkItem(it.index, it.image, it.image_name, it.metric, it.attack, missing,
                                    it.target_defence, it.seed, it.id, it.content))
        else:
            pending.append(it)
    legacy = store is not None and _had_legacy_rows(store, exp.id)
    return ReusePlan(items, pending, reused, extended, legacy)


def _had_legacy_rows(store: Any, exp_id: str) -> bool:
    try:
        return store.identity(exp_id) == "name" and bool(store.done_item_ids(exp_id))
    except Exception:  # noqa: BLE001 - an experiment the store does not hold
        return False


def content_items(exp: Experiment, store: Any = None,
                  cache: dict[str, tuple[int, int, str]] | None = None) -> list[WorkItem]:
    """``exp``'s items identified by content (what a run computes and stores)."""
    return exp.items(contents(exp, store, cache))
