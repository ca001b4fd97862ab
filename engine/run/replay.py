"""A defence added later: its rows from the stored attacked image, without attacking again.

Plan side (:func:`find_replays`, called by :func:`engine.run.identity.reuse_plan`): for
each unit stored for some defences, an exact float copy of its x_a kept beside the store
(:mod:`engine.store.attacked`, written by runs with ``keep_attacked``) whose record
matches the unit's stored M(x_a) becomes an :class:`~engine.spec.replay.AttackReplay`
attached to the item; a unit without one is attacked again, and the plan says why.

Compute side (:func:`load_attacked`, :func:`replayed_attack`): the back end reads and
checks the copy (checksum, shape, dtype; a remote worker gets its bytes from the driver
like the image's), and the attack stage is replaced by the stored numbers: M(x), M(x_a),
the step records and the attack's columns of the unit's stored rows. The defences then
run on the copy exactly as they run on a fresh x_a, so the new rows equal those of a full
recompute (for an attack that gives the same x_a when recomputed).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable

import torch

from engine.evaluation.protocol import to_8bit_grid
from engine.run.attack import Attacked
from engine.run.scoring import metric_scores
from engine.spec.replay import ATTACK_COLUMNS, AttackReplay
from engine.store.attacked import CopyMissing, CopyUnusable, read_copy, read_meta

if TYPE_CHECKING:
    from engine.io.images import LoadedImage
    from engine.spec.experiment import Experiment, WorkItem

#: why a stored attack is computed again when no copy of x_a was kept
NO_COPY = "no exact float copy of its attacked image is stored (runs with --keep-attacked keep one)"


def find_replays(items: Iterable["WorkItem"], store: Any, verify: bool = False,
                 ) -> tuple[dict[str, AttackReplay], dict[str, str]]:
    """The stored attacks ``items`` (units done in ``store`` for some defences) can replay.

    Args:
        items: the items whose units are stored for some of their defences.
        store: the open (possibly read-only) store.
        verify: also read each copy and check its checksum (the driver does; the plan
            preview checks the record and the file's size only).

    Returns:
        ``(replays, why)``: unit id → its replay, and unit id → why it is attacked again.
    """
    ids = {it.id for it in items}
    records = store.attack_records(ids) if ids else {}
    replays: dict[str, AttackReplay] = {}
    why: dict[str, str] = {}
    for uid in sorted(ids):
        try:
            replays[uid] = _replay(store.attacked_dir, uid, records.get(uid), verify)
        except CopyMissing:
            why[uid] = NO_COPY
        except CopyUnusable as exc:
            why[uid] = str(exc)
    return replays, why


def _replay(folder: os.PathLike, uid: str, record: dict[str, Any] | None, verify: bool) -> AttackReplay:
    """The unit's replay, or :class:`CopyUnusable` saying why there is none."""
    meta = read_meta(folder, uid)
    if record is None:
        raise CopyUnusable("its stored attack record could not be read")
    if meta["attacked"] != record["attacked"]:
        raise CopyUnusable("the stored copy is not the attacked image behind its stored rows (M(x_a) differs)")
    if verify:
        read_copy(meta)
    row = record["row"]
    try:
        return AttackReplay(path=os.path.abspath(meta["path"]), sha256=meta["sha256"], shape=tuple(meta["shape"]),
                            dtype=meta["dtype"], clean=float(record["clean"]), attacked=float(record["attacked"]),
                            attacked_8bit=row.get("attacked_8bit"), columns={k: row.get(k) for k in ATTACK_COLUMNS},
                            steps=list(record["steps"]), seconds=float(record["seconds"] or 0.0))
    except (TypeError, ValueError, AttributeError):
        raise CopyUnusable("its stored attack record is incomplete") from None


def load_attacked(item: "WorkItem", loaded: "LoadedImage", data: dict[str, bytes] | None = None) -> torch.Tensor:
    """The item's stored x_a (1×3×H×W), checked; ``data``: file bytes the driver read.

    Raises:
        CopyUnusable: missing, damaged, or not of the image's size.
    """
    r = item.replay
    assert r is not None
    meta = {"path": r.path, "sha256": r.sha256, "shape": r.shape, "dtype": r.dtype}
    arr = read_copy(meta, (data or {}).get(r.path))
    if tuple(arr.shape) != tuple(loaded.tensor.shape):
        raise CopyUnusable(f"the stored copy has shape {tuple(arr.shape)}, the image {tuple(loaded.tensor.shape)}")
    return torch.from_numpy(arr.copy())


def replayed_attack(items: list["WorkItem"], attacked: list[torch.Tensor], metric, exp: "Experiment",
                    device: torch.device) -> Attacked:
    """The attack stage of ``items`` from their stored attacks: x_a from the copies, the
    scores and the attack's columns from the stored rows (M(x_a on the 8-bit grid) is
    scored from the copy only when the stored rows lack it)."""
    reps = [it.replay for it in items]
    assert all(r is not None for r in reps)
    x_adv = torch.cat(attacked).to(device)
    scores = [r.attacked for r in reps]
    scores_8bit = [r.attacked_8bit for r in reps]
    if any(s is None for s in scores_8bit):
        scores_8bit = scores if exp.protocol == "msu" else metric_scores(
            metric, to_8bit_grid(x_adv), "attacked image on the 8-bit grid", "attack")
    used = [int(r.columns.get("iteration_used") if r.columns.get("iteration_used") is not None else -1)
            for r in reps]
    return Attacked(x_adv, scores, 0.0, None, used, scores_8bit=scores_8bit, replayed=reps)
