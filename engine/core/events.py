"""Events yielded while an experiment runs.

The CLI (tqdm), the GUI worker (Qt signals) and any future back end consume the same
stream; none of them has its own copy of the pipeline. Events are plain, picklable
dataclasses; images travel as ``uint8`` H×W×3 numpy arrays so consumers never need torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from engine.spec.experiment import WorkItem


@dataclass(frozen=True)
class StepRecord:
    """What one attack iteration reports (means over the batch).

    ``iteration`` 0 is the clean image; iteration k is the iterate after k updates.
    ``queries``: for score-only (black-box) attacks, the metric queries spent per image so
    far (the most over the batch); their step is a block of queries and ``score`` the best
    score found so far. None for gradient attacks (and then left out of :meth:`to_dict`).
    ``per_image``: for a batch of several images, each image's own record (what it
    reports when attacked alone); empty for a single image.
    """

    iteration: int
    score: float
    loss: float
    linf: float
    l2: float
    psnr: float
    queries: int | None = None
    per_image: tuple["StepRecord", ...] = field(default=(), compare=False, repr=False)

    def image(self, i: int) -> "StepRecord":
        """Image ``i``'s record (the record itself for a single image)."""
        return self.per_image[i] if self.per_image else self

    def to_dict(self) -> dict[str, float]:
        d = {"iteration": self.iteration, "score": self.score, "loss": self.loss,
             "linf": self.linf, "l2": self.l2, "psnr": self.psnr}
        if self.queries is not None:
            d["queries"] = self.queries
        return d


@dataclass(frozen=True)
class RunStarted:
    experiment_id: str
    total: int          # items in the experiment
    pending: int        # units this run will compute (a link and its target count once)
    device: str
    reused: int = 0     # items whose rows the store holds already (from any experiment)
    notes: tuple[str, ...] | list[str] = ()  # why work is computed again, one line each
    attacks_reused: int = 0  # stored attacks replayed from exact float copies (new defences' rows only)


@dataclass(frozen=True)
class ItemStarted:
    item: WorkItem
    position: int       # 1-based among pending items
    pending: int


@dataclass(frozen=True)
class CleanScored:
    item_id: str
    score: float


@dataclass(frozen=True)
class AttackStep:
    item_id: str
    attack: str         # label of the attack
    step: StepRecord
    clean_score: float


@dataclass(frozen=True)
class AttackDone:
    item_id: str
    attacked_score: float
    seconds: float
    selection: str
    iteration_used: int
    mode: str


@dataclass(frozen=True)
class DefenceDone:
    item_id: str
    defence: str        # label
    row: dict[str, Any]


@dataclass(frozen=True)
class ItemImages:
    """uint8 H×W×3 arrays: the clean and attacked image and each defended pair."""

    clean: np.ndarray
    attacked: np.ndarray
    defended_clean: dict[str, np.ndarray] = field(default_factory=dict)
    defended_attacked: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemFinished:
    item: WorkItem
    rows: list[dict[str, Any]]
    steps: list[dict[str, Any]]   # StepRecord.to_dict() of every attack step
    images: ItemImages | None = None


@dataclass(frozen=True)
class ItemFailed:
    item: WorkItem
    error: str
    stage: str = ""     # load, metric, attack, defence, evaluation


@dataclass(frozen=True)
class RunFinished:
    experiment_id: str
    finished: int
    failed: int
    cancelled: bool
    seconds: float


Event = (RunStarted | ItemStarted | CleanScored | AttackStep | AttackDone | DefenceDone
         | ItemFinished | ItemFailed | RunFinished)
