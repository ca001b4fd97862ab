"""Batching: compatible items run as one batch and give batch 1's rows, events and failures."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.run.batching import header_size, parse_batch_size, plan_units
from engine.core.events import AttackStep, CleanScored, ItemFailed, ItemFinished
from engine.spec.experiment import Experiment
from engine.spec.folders import find_images
from engine.metrics.base import METRICS, Metric
from engine.run.driver import run_experiment
from engine.run.runtime import Runtime
from engine.store.db import ResultStore
from tests.conftest import photo

TIMING = {"attack_time", "defence_time"}
NAMES = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture
def same_size_folder(tmp_path: Path) -> Path:
    """Four real photos of one size (96×112) and one of another size (NIQE needs ≥ 96 px)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for n in NAMES:
        Image.fromarray(photo(n, (96, 112))).save(folder / f"{n}.png")
    Image.fromarray(photo("astronaut", (104, 96))).save(folder / "z_other.png")
    return folder


def _exp(folder: Path, batch: int | str = 1, **kw) -> Experiment:
    base = dict(images=find_images(folder), root=str(folder), metrics=["niqe"],
                attacks=["pgd:iters=2"], defences=["jpeg", "median-blur"], seed=11, device="cpu",
                batch_size=batch)
    base.update(kw)
    return Experiment(**base)


def _rows_and_steps(exp: Experiment, store: ResultStore, runtime: Runtime | None = None):
    events = list(run_experiment(exp, store, runtime=runtime))
    rows = sorted(store.rows(exp.id), key=lambda r: (r["item_id"], r["defence_label"]))
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    steps = {it["item_id"]: (it["status"], it["steps"]) for it in store.items(exp.id)}
    return events, rows, steps


def test_batch_size_parsing():
    assert parse_batch_size("auto") == "auto" and parse_batch_size("4") == 4 and parse_batch_size(1) == 1
    for bad in ("0", "-2", "x", 2.5):
        with pytest.raises(ValueError, match="batch size"):
            parse_batch_size(bad)


def test_plan_groups_items_by_metric_attack_and_size(same_size_folder):
    exp = _exp(same_size_folder, batch=3, metrics=["niqe", "brisque"])
    units = plan_units(exp.items(), exp)
    assert sorted(len(u) for u in units) == [1, 1, 1, 1, 3, 3]
    for unit in units:
        keys = {(it.metric.key, it.attack.key, header_size(it.image)) for it in unit}
        assert len(keys) == 1
    assert [it for u in units for it in u] != [] and sum(len(u) for u in units) == len(exp.items())
    assert all(len(u) == 1 for u in plan_units(exp.items(), _exp(same_size_folder, batch=1)))
    # on the CPU, auto means one image at a time
    assert all(len(u) == 1 for u in plan_units(exp.items(), _exp(same_size_folder, batch="auto")))


def test_header_size_follows_exif_rotation(tmp_path):
    img = Image.fromarray(photo("astronaut", (40, 60)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: loaded as 40 wide, 60 high
    img.save(tmp_path / "r.jpg", exif=exif)
    assert header_size(str(tmp_path / "r.jpg")) == (40, 60)
    (tmp_path / "bad.png").write_text("not an image")
    assert header_size(str(tmp_path / "bad.png")) is None


@pytest.mark.parametrize("metric", ["niqe", "brisque"])
def test_batched_rows_equal_batch_one_bit_for_bit(tmp_path, same_size_folder, metric):
    """Random start (PGD), a random defence under EOT and best-iterate selection: every
    per-image quantity of a batch of 4 equals the image's own run at batch 1."""
    kw = dict(metrics=[metric], attacks=["pgd:iters=2", "ifgsm:iters=2:keep_best=true"],
              defences=["jpeg", "random-noise:sigma=0.03", "bilateral"], eot_draws=2)
    ev1, rows1, steps1 = _rows_and_steps(_exp(same_size_folder, 1, **kw), ResultStore(tmp_path / "a.sqlite"))
    ev4, rows4, steps4 = _rows_and_steps(_exp(same_size_folder, 4, **kw), ResultStore(tmp_path / "b.sqlite"))
    assert len(rows1) == 5 * 2 * 4 and rows4 == rows1
    assert steps4 == steps1 and all(status == "done" for status, _ in steps4.values())
    # the live curve follows the unit's first image; every item still gets its clean score
    stepped = {e.item_id for e in ev4 if isinstance(e, AttackStep)}
    assert len(stepped) == 2 + 2  # per attack: the first item of the 4-batch and the lone image
    assert sum(isinstance(e, CleanScored) for e in ev4) == 10
    first = next(e for e in ev4 if isinstance(e, AttackStep))
    assert [e.step.to_dict() for e in ev4 if isinstance(e, AttackStep) and e.item_id == first.item_id] \
        == steps1[first.item_id][1]


def test_adaptive_batched_rows_equal_batch_one(tmp_path, same_size_folder):
    """Adaptive mode: the target is M∘D (EOT over a random defence, BPDA through JPEG)."""
    kw = dict(attacks=["ifgsm:iters=2"], defences=["jpeg", "random-noise:sigma=0.03"], adaptive=True,
              eot_draws=2)
    _, rows1, steps1 = _rows_and_steps(_exp(same_size_folder, 1, **kw), ResultStore(tmp_path / "a.sqlite"))
    _, rows3, steps3 = _rows_and_steps(_exp(same_size_folder, 3, **kw), ResultStore(tmp_path / "b.sqlite"))
    assert len(rows1) == 5 * 3 and rows3 == rows1 and steps3 == steps1
    assert {r["attack_mode"] for r in rows3} == {"direct", "bpda", "eot"}


class DarkNanMetric(Metric):
    """Mean brightness, but NaN when the top-left corner is dim (only chelsea's, here)."""

    bounds = (0.0, 1.0)

    def __init__(self, pretrained: bool = True, **_):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3)) * self.w
        corner = x[:, :, :4, :4].mean(dim=(1, 2, 3))
        return torch.where((corner > 0.15) & (corner < 0.25), m * float("nan"), m)


class SmallMemoryMetric(DarkNanMetric):
    """Runs out of memory on a batch of more than two images."""

    def forward(self, x):
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return x.mean(dim=(1, 2, 3)) * self.w


class BatchStatsMetric(SmallMemoryMetric):
    batch_safe = False


@pytest.fixture
def test_metrics():
    names = {"test-dark-nan": DarkNanMetric, "test-small-memory": SmallMemoryMetric,
             "test-batch-stats": BatchStatsMetric}
    for name, cls in names.items():
        METRICS.register(name)(cls)
    yield names
    for name in names:
        METRICS.unregister(name)


def test_one_nan_or_corrupt_image_fails_only_its_item(tmp_path, same_size_folder, test_metrics):
    data = (same_size_folder / "astronaut.png").read_bytes()
    (same_size_folder / "broken.png").write_bytes(data[: len(data) // 2])  # header fine, data cut
    exp = _exp(same_size_folder, 8, metrics=["test-dark-nan"], attacks=["ifgsm:iters=2"])
    assert [len(u) for u in plan_units(exp.items(), exp)] == [5, 1]  # the broken file joins the batch
    events, rows, steps = _rows_and_steps(exp, ResultStore(tmp_path / "r.sqlite"))
    failed = {e.item.image_name: e for e in events if isinstance(e, ItemFailed)}
    assert set(failed) == {"broken.png", "chelsea.png"}
    assert failed["broken.png"].stage == "load" and "not a finite number" in failed["chelsea.png"].error
    assert sum(isinstance(e, ItemFinished) for e in events) == 4
    _, rows1, _ = _rows_and_steps(_exp(same_size_folder, 1, metrics=["test-dark-nan"], attacks=["ifgsm:iters=2"]),
                                  ResultStore(tmp_path / "one.sqlite"))
    assert rows == rows1


def test_out_of_memory_halves_the_batch_and_remembers(tmp_path, same_size_folder, test_metrics):
    runtime = Runtime("cpu")
    exp = _exp(same_size_folder, 4, metrics=["test-small-memory"], attacks=["ifgsm:iters=2"])
    events, rows, steps = _rows_and_steps(exp, ResultStore(tmp_path / "r.sqlite"), runtime)
    assert not any(isinstance(e, ItemFailed) for e in events) and len(rows) == 5 * 3
    assert set(runtime.batch_limits.values()) == {2}
    _, rows1, _ = _rows_and_steps(_exp(same_size_folder, 1, metrics=["test-small-memory"],
                                       attacks=["ifgsm:iters=2"]), ResultStore(tmp_path / "one.sqlite"))
    assert rows == rows1


def test_metric_not_batch_safe_runs_alone(tmp_path, same_size_folder, test_metrics):
    exp = _exp(same_size_folder, 4, metrics=["test-batch-stats"], attacks=["ifgsm:iters=2"])
    assert all(len(u) == 1 for u in plan_units(exp.items(), exp))
    # even handed a batch (another planner), run_unit runs it image by image: no OOM here
    from engine.run.compute import run_unit
    from engine.run.units import ItemOutcome

    outs = [o for o in run_unit(exp.items()[:4], exp, Runtime("cpu")) if isinstance(o, ItemOutcome)]
    assert len(outs) == 4 and all(o.ok for o in outs)


def test_cli_batch_option(tmp_path, same_size_folder, capsys):
    from engine.cli import make_parser
    from engine.cli.run import build_experiment

    argv = ["run", str(same_size_folder), "--metric", "niqe", "--attack", "ifgsm", "--out", str(tmp_path)]
    assert build_experiment(make_parser().parse_args(argv + ["--batch", "4"])).batch_size == 4
    assert build_experiment(make_parser().parse_args(argv + ["--batch", "auto"])).batch_size == "auto"
    assert build_experiment(make_parser().parse_args(argv)).batch_size == 1
    with pytest.raises(SystemExit) as exc:
        make_parser().parse_args(argv + ["--batch", "0"])
    assert exc.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_attacks_that_are_not_batchable_run_alone(same_size_folder):
    from engine.attacks import ATTACKS

    not_batchable = {n for n in ATTACKS.names() if not ATTACKS.get(n).batchable}
    assert {"square", "parsimonious", "onepixel", "patch-rs", "pgd-l2", "stadv"} <= not_batchable
    exp = _exp(same_size_folder, 4, attacks=["square:queries=20", "ifgsm:iters=2"])
    units = plan_units(exp.items(), exp)
    assert all(len(u) == 1 for u in units if u[0].attack.name == "square")
    assert any(len(u) == 4 for u in units if u[0].attack.name == "ifgsm")


def test_a_certified_defence_in_a_batch_gives_batch_1s_rows(tmp_path, same_size_folder):
    """Each image's smoothing draws come from its own seed, batched or not."""
    kw = dict(metrics=["niqe"], attacks=["ifgsm:iters=1"], defences=["median-smoothing:n=8:sigma=0.12"])
    _, rows4, _ = _rows_and_steps(_exp(same_size_folder, 4, **kw), ResultStore(tmp_path / "b4.sqlite"))
    _, rows1, _ = _rows_and_steps(_exp(same_size_folder, 1, **kw), ResultStore(tmp_path / "b1.sqlite"))
    certified = [r for r in rows4 if r["defence"] == "median-smoothing"]
    assert len(certified) == 5 and all(r.get("defended-clear_certified_low") is not None for r in certified)
    assert rows4 == rows1
