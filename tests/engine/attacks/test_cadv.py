"""cadv: the colourisation attack (Bhattad et al., ICLR 2020; MSU's cadv/run.py), with the
colourisation network at random weights (MSU's weights are not on the test machine)."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.color
import torch

from engine.attacks import ATTACKS
from engine.attacks._colorization import ColorNet, choose_hints, kmeans, lab_to_rgb, load_colorization, rgb_to_lab
from engine.metrics.base import Metric, MetricError
from engine.metrics.counting import QueryCounter
from tests.conftest import photo_tensor

NAMES = ("astronaut", "coffee", "chelsea")


class Redness(Metric):
    """Mean red channel: higher is better; its gradient is known (a constant)."""

    name = "redness"
    bounds = (0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0].mean(dim=(1, 2))


def _lab_skimage(x: torch.Tensor) -> np.ndarray:
    return skimage.color.rgb2lab(x[0].permute(1, 2, 0).double().numpy())


def test_lab_matches_skimage_and_round_trips():
    x = photo_tensor("coffee", (24, 24))
    lab = rgb_to_lab(x)
    ref = _lab_skimage(x)
    assert np.abs(lab[0, 0].numpy() * 100 + 50 - ref[..., 0]).max() < 1e-3
    assert np.abs(lab[0, 1].numpy() * 110 - ref[..., 1]).max() < 1e-3
    assert np.abs(lab[0, 2].numpy() * 110 - ref[..., 2]).max() < 1e-3
    assert float((lab_to_rgb(lab) - x).abs().max()) < 1e-5


def test_network_shapes_and_state_dict_round_trip(tmp_path):
    net = load_colorization("random", "cpu")
    L, ab = torch.rand(1, 1, 16, 24), torch.zeros(1, 2, 16, 24)
    logits, out = net(L, ab, torch.full_like(L, -0.5))
    assert logits.shape == (1, 529, 4, 6) and out.shape == (1, 2, 16, 24)
    assert float(out.abs().max()) <= 1.0
    # the published layout: these keys are what MSU's state dict holds
    keys = net.state_dict()
    assert keys["model1.0.weight"].shape == (64, 4, 3, 3) and "model1.4.running_mean" in keys
    assert keys["model5.0.weight"].shape == (512, 512, 3, 3) and net.model5[0].dilation == (2, 2)
    assert keys["model8up.0.weight"].shape == (512, 256, 4, 4) and keys["model_out.0.weight"].shape == (2, 128, 1, 1)
    path = tmp_path / "color.pth"
    torch.save({f"module.{k}": v for k, v in keys.items()}, path)  # a DataParallel save loads too
    again = load_colorization(str(path), "cpu")
    assert torch.equal(again(L, ab, torch.full_like(L, -0.5))[1], out)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(MetricError, match="does not fit the colourisation network"):
        load_colorization(str(tmp_path / "bad.pth"), "cpu")


def test_missing_weights_offline_give_the_usual_message(tmp_path, monkeypatch):
    from engine.core.errors import EXIT_WEIGHTS, describe
    from engine.metrics.weights import WeightsUnavailable

    monkeypatch.setenv("IQA_LAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("IQA_LAB_OFFLINE", "1")
    assert ATTACKS.get("cadv").availability({}).state == "needs-download"
    assert ATTACKS.get("cadv").availability({"weights": "random"}).state == "ready"
    assert ATTACKS.get("cadv").availability({"weights": str(tmp_path / "no.pth")}).state == "unavailable"
    with pytest.raises(WeightsUnavailable) as exc:
        ATTACKS.get("cadv")()(photo_tensor("coffee", (16, 16)), Redness())
    message, code = describe(exc.value)
    assert code == EXIT_WEIGHTS and "cadv-colorization-model.pth" in message and str(tmp_path) in message


def test_kmeans_separates_two_blobs():
    g = torch.Generator().manual_seed(0)
    pts = torch.cat([torch.randn(50, 2, generator=g) * 0.1, torch.randn(50, 2, generator=g) * 0.1 + 5])
    labels = kmeans(pts, 2, torch.Generator().manual_seed(3))
    assert len(set(labels[:50].tolist())) == 1 and len(set(labels[50:].tolist())) == 1
    assert labels[0] != labels[50]


def test_hints_carry_the_true_colours_of_sampled_pixels():
    net = load_colorization("random", "cpu")
    lab = rgb_to_lab(photo_tensor("chelsea", (32, 32)))
    hints, mask = choose_hints(net, lab, torch.Generator().manual_seed(0), hints=20)
    at = mask[0, 0] > 0
    assert int(at.sum()) == 20 and set(mask.unique().tolist()) == {-0.5, 0.5}
    assert torch.equal(hints[0][:, at], lab[0, 1:][:, at]) and float(hints[0][:, ~at].abs().max()) == 0.0
    again, mask2 = choose_hints(net, lab, torch.Generator().manual_seed(0), hints=20)
    assert torch.equal(again, hints) and torch.equal(mask2, mask)


@pytest.fixture(scope="module")
def runs():
    """cadv (random colourisation weights) on three photos, 32×32 (28×36 for the padding)."""
    metric = Redness()
    out = {}
    for k, name in enumerate(NAMES):
        x = photo_tensor(name, (28, 36) if k == 0 else (32, 32))
        attack = ATTACKS.get("cadv")(weights="random", iters=3, lr=0.05)
        out[name] = (x, attack(x, metric, generator=torch.Generator().manual_seed(1)))
    return out


def test_moves_the_score_toward_better_from_its_start(runs):
    metric = Redness()
    for name, (x, o) in runs.items():
        start, final = o.steps[0].score, float(metric.score(o.image))
        assert final > start + 1e-3, name  # every photo: the gradient is known to exist
        assert o.image.shape == x.shape and 0.0 <= float(o.image.min()) and float(o.image.max()) <= 1.0


def test_luminance_is_kept_where_the_colour_is_in_gamut(runs):
    for name, (x, o) in runs.items():
        inside = ((o.image > 1e-4) & (o.image < 1 - 1e-4)).all(dim=1)[0]
        ref_in, ref_out = _lab_skimage(x)[..., 0], _lab_skimage(o.image)[..., 0]
        diff = np.abs(ref_in - ref_out)[inside.numpy()]
        assert inside.float().mean() > 0.3, name
        assert diff.max() < 0.01, name  # L in [0, 100]


def test_deterministic_per_seed_and_stoppable_within_one_step():
    x = photo_tensor("coffee", (24, 24))
    metric = Redness()
    attack = ATTACKS.get("cadv")(weights="random", iters=2, lr=0.05)
    a = attack(x, metric, generator=torch.Generator().manual_seed(5)).image
    b = attack(x, metric, generator=torch.Generator().manual_seed(5)).image
    c = attack(x, metric, generator=torch.Generator().manual_seed(6)).image
    assert torch.equal(a, b) and not torch.equal(a, c)
    with QueryCounter(metric) as qc:
        run = attack.run(x, metric, generator=torch.Generator().manual_seed(5))
        next(run)
        run.close()
    assert qc.images == 1  # one scoring of the first re-colouring, nothing after the stop


def test_raises_a_real_metric_on_most_photos(brisque):
    better = 0
    for name in NAMES:
        x = photo_tensor(name, (32, 32))
        o = ATTACKS.get("cadv")(weights="random", iters=3, lr=0.05)(x, brisque,
                                                                     generator=torch.Generator().manual_seed(0))
        better += brisque.sign * (float(brisque.score(o.image)) - o.steps[0].score) > 0
    assert better >= 2


def test_a_batch_gives_each_image_what_it_gets_alone():
    """batchable: per-image generators, eval-mode BatchNorm and element-wise Adam keep the
    images of a batch independent."""
    x = torch.cat([photo_tensor("coffee", (24, 24)), photo_tensor("chelsea", (24, 24))])
    metric = Redness()
    attack = ATTACKS.get("cadv")(weights="random", iters=2, lr=0.05)
    both = attack(x, metric, generator=[torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)]).image
    for i, seed in enumerate((3, 4)):
        alone = attack(x[i:i + 1], metric, generator=torch.Generator().manual_seed(seed)).image
        assert torch.allclose(both[i:i + 1], alone, atol=1e-5)
