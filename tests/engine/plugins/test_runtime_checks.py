"""A plug-in that misbehaves while it runs (wrong shape, NaN, a score with no gradient)
fails its own items with its file and line; the built-ins in the same run finish."""
from __future__ import annotations

import textwrap

import pytest

from engine.core.events import ItemFailed
from engine.plugins import load_path
from engine.run.driver import run_experiment
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.store.db import ResultStore

BAD_METRICS = textwrap.dedent("""\
    import torch
    from engine.api import METRICS, Metric


    @METRICS.register("wrong-shape")
    class WrongShape(Metric):
        bounds = (0.0, 1.0)

        def forward(self, x):
            return x.mean(dim=(2, 3))                    # (B, 3): one score per channel


    @METRICS.register("gives-nan")
    class GivesNan(Metric):
        bounds = (0.0, 1.0)

        def forward(self, x):
            return x.mean(dim=(1, 2, 3)) * float("nan")


    @METRICS.register("no-gradient")
    class NoGradient(Metric):
        bounds = (0.0, 1.0)

        def forward(self, x):
            return torch.tensor([float(v) for v in x.mean(dim=(1, 2, 3))])


    @METRICS.register("honest-mean")
    class HonestMean(Metric):
        bounds = (0.0, 1.0)

        def forward(self, x):
            return x.mean(dim=(1, 2, 3))


    from engine.api import ATTACKS, DEFENCES, Attack, AttackOutcome, Defence


    @DEFENCES.register("crops-channels")
    class CropsChannels(Defence):
        def forward(self, x, generator):
            return x[:, :2]


    @ATTACKS.register("returns-nan")
    class ReturnsNan(Attack):
        strength_param = None

        def run(self, x, metric, *, generator=None):
            yield from ()
            return AttackOutcome(x * float("nan"), "last", [0] * x.shape[0])
    """)


def method_line(cls_name: str, method: str) -> int:
    """The line of ``def method`` in class ``cls_name`` of :data:`BAD_METRICS` (1-based)."""
    lines = BAD_METRICS.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls_name}("))
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"def {method}(")) + 1


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "misbehaving.py"
    path.write_text(BAD_METRICS, encoding="utf-8")
    load_path(path)
    return path


def _failures(exp: Experiment, folder) -> tuple[list[ItemFailed], list[dict]]:
    store = ResultStore(folder / "r.sqlite")
    events = list(run_experiment(exp, store))
    return [e for e in events if isinstance(e, ItemFailed)], store.rows(exp.id)


def test_misbehaving_metrics_fail_their_items_with_file_and_line(bad_file, small_photos, tmp_path):
    exp = Experiment(images=find_images(small_photos), root=str(small_photos),
                     metrics=["wrong-shape", "gives-nan", "no-gradient", "honest-mean"],
                     attacks=["ifgsm:iters=1"], defences=["jpeg"], seed=1, device="cpu")
    failed, rows = _failures(exp, tmp_path)
    by_metric = {}
    for f in failed:
        by_metric.setdefault(f.item.metric.name, []).append(f.error)
    assert sorted(by_metric) == ["gives-nan", "no-gradient", "wrong-shape"]
    assert all(len(v) == 2 for v in by_metric.values())  # both images
    assert f"{bad_file}:{method_line('WrongShape', 'forward')}: metric 'wrong-shape'" in by_metric["wrong-shape"][0]
    assert "returned (1, 3) for a batch of 1 images" in by_metric["wrong-shape"][0]
    assert f"{bad_file}:{method_line('GivesNan', 'forward')}: metric 'gives-nan'" in by_metric["gives-nan"][0]
    assert "not finite" in by_metric["gives-nan"][0]
    assert f"{bad_file}:{method_line('NoGradient', 'forward')}: metric 'no-gradient'" in by_metric["no-gradient"][0]
    assert "no gradient" in by_metric["no-gradient"][0]
    honest = [r for r in rows if r["metric"] == "honest-mean"]
    assert len(honest) == 2 * 2 and not any(r.get("error") for r in honest)
    assert all(r["attacked"] > r["clear"] for r in honest if r["defence"] == "none")


def test_a_misbehaving_defence_and_attack_are_pinned_to_their_file(bad_file, small_photos, tmp_path):
    exp = Experiment(images=find_images(small_photos)[:1], root=str(small_photos), metrics=["honest-mean"],
                     attacks=["returns-nan", "ifgsm:iters=1"], defences=["crops-channels", "jpeg"], seed=1,
                     device="cpu")
    failed, rows = _failures(exp, tmp_path)
    [attack_failure] = failed
    assert attack_failure.item.attack.name == "returns-nan"
    assert f"{bad_file}:{method_line('ReturnsNan', 'run')}: attack 'returns-nan'" in attack_failure.error and "not finite" in attack_failure.error
    ifgsm = {r["defence"]: r for r in rows if r["attack"] == "ifgsm"}
    assert not ifgsm["none"].get("error") and not ifgsm["jpeg"].get("error")
    crop = ifgsm["crops-channels"]["error"]
    assert f"{bad_file}:{method_line('CropsChannels', 'forward')}: defence 'crops-channels'" in crop and "returned (1, 2, 48, 48)" in crop
