from pathlib import Path

import pytest

from engine.spec.experiment import ComponentSpec, Experiment
from engine.spec.folders import find_images


def _exp(**kw):
    base = dict(images=["/d/a.png", "/d/b.png"], root="/d", metrics=["niqe"], attacks=["ifgsm", "fgsm"],
                defences=["jpeg", ComponentSpec("median-blur", {"kernel_size": 5})], seed=3)
    base.update(kw)
    return Experiment(**base)


def test_parse_component_forms():
    assert ComponentSpec.parse("ifgsm") == ComponentSpec("ifgsm")
    s = ComponentSpec.parse("ifgsm:eps=4/255:iters=5")
    assert s.params == {"eps": pytest.approx(4 / 255), "iters": 5}
    p = ComponentSpec.parse("jpeg[q=30]")
    assert p.preset == "q=30" and p.preset_label == "q=30"
    with pytest.raises(ValueError):
        ComponentSpec.parse("ifgsm:eps")


def test_json_round_trip_keeps_identity():
    e = _exp()
    e2 = Experiment.from_json(e.to_json())
    assert e2.id == e.id and e2.to_dict() == e.to_dict()
    assert [i.id for i in e2.items()] == [i.id for i in e.items()]


def test_identity_ignores_device_but_not_seed_or_params():
    e = _exp()
    assert _exp(device="cuda").id == e.id
    assert _exp(seed=4).id != e.id
    assert _exp(attacks=["ifgsm:eps=0.01"]).id != e.id


def test_expansion_images_major_with_none_defence_first():
    items = _exp().items()
    assert len(items) == 2 * 1 * 2
    assert [i.image_name for i in items] == ["a.png", "a.png", "b.png", "b.png"]
    assert items[0].defences[0].name == "none" and len(items[0].defences) == 3
    assert len({i.id for i in items}) == 4 and len({i.seed for i in items}) == 4
    adaptive = _exp(adaptive=True).items()
    assert len(adaptive) == 4 * 3 and all(i.target_defence == i.defences[0] for i in adaptive)


def test_item_seed_depends_on_identity_not_position():
    a = {i.image_name + i.attack.name: i.seed for i in _exp().items()}
    b = {i.image_name + i.attack.name: i.seed for i in _exp(images=["/d/b.png", "/d/a.png"]).items()}
    assert a == b


def test_find_images(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    for n in ("x.png", "y.JPG", "sub/z.tif", "notes.txt", ".hidden.png"):
        (tmp_path / n).write_bytes(b"0")
    assert [Path(p).name for p in find_images(tmp_path)] == ["z.tif", "x.png", "y.JPG"]
