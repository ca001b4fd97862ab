"""The loader: files, folders and entry points register like built-ins, say where they
come from, reload when changed, and are forgotten by ``isolated``; a bad plug-in is
refused with its file and line and leaves the registries as they were."""
from __future__ import annotations

import os
import textwrap

import pytest
import torch

from engine.api import ATTACKS, DEFENCES, METRICS
from engine.plugins import (
    PluginError,
    env_paths,
    isolated,
    load_entry_points,
    load_path,
    loaded,
    origin_of,
)
from engine.plugins.loader import file_hash
from tests.engine.plugins.conftest import write_plugin


def test_a_file_registers_its_component_and_says_where_it_comes_from(plugin_files):
    [rec] = load_path(plugin_files["defence"])
    assert rec.components == [("defence", "p-tv")] and rec.way == "file"
    assert rec.sha256 == file_hash(plugin_files["defence"])
    assert origin_of("defence", "p-tv") is rec and origin_of("defence", "jpeg") is None
    assert DEFENCES.get("p-tv").plugin == f"file {plugin_files['defence']}"
    noisy = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    out = DEFENCES.get("p-tv")()(noisy)
    assert out.shape == noisy.shape and not torch.equal(out, noisy)


def test_a_plain_folder_loads_every_file_and_a_package_folder_loads_as_a_package(tmp_path, plugin_files):
    recs = load_path(plugin_files["metric"].parent)
    assert sorted(c for r in recs for c in r.components) == [
        ("attack", "p-ifgsm"), ("defence", "p-tv"), ("metric", "p-sharp")]
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    write_plugin(pkg, "defence", "pkg-tv")
    (pkg / "__init__.py").write_text("from . import pkg_tv  # noqa: F401\n", encoding="utf-8")
    [rec] = load_path(pkg)
    assert rec.components == [("defence", "pkg-tv")] and rec.sha256 == file_hash(pkg)


def test_loading_again_is_a_no_op_unless_the_file_changed(plugin_files):
    path = plugin_files["metric"]
    [first] = load_path(path)
    assert load_path(path)[0] is first
    path.write_text(path.read_text().replace("p-sharp", "p-sharp2"), encoding="utf-8")
    [second] = load_path(path)
    assert second.components == [("metric", "p-sharp2")]
    assert "p-sharp" not in METRICS and "p-sharp2" in METRICS
    assert loaded() == [second]


def test_isolated_forgets_what_was_loaded_inside(plugin_files):
    with isolated():
        load_path(plugin_files["attack"])
        assert "p-ifgsm" in ATTACKS
    assert "p-ifgsm" not in ATTACKS and origin_of("attack", "p-ifgsm") is None and loaded() == []


def test_entry_points_of_an_installed_distribution(entry_point_dist):
    recs, errors = load_entry_points()
    assert errors == []
    assert sorted(c for r in recs for c in r.components) == [
        ("attack", "ep-ifgsm"), ("defence", "ep-tv"), ("metric", "ep-sharp")]
    assert {r.label for r in recs} == {"package iqa-lab-test-pkg 1.2"}
    from engine.metrics import create_metric

    m = create_metric("ep-sharp", scale=10.0)
    assert m.score(torch.rand(2, 3, 16, 16)).shape == (2,)
    assert load_entry_points() == ([], [])  # loaded once


def test_env_paths_split_on_the_os_path_separator():
    assert env_paths({"IQA_LAB_PLUGINS": os.pathsep.join(["/a/x.py", "", "/b"])}) == ["/a/x.py", "/b"]
    assert env_paths({}) == []


def _bad(tmp_path, body: str, name: str = "bad.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


BAD = {
    "import fails": ("""\
        from engine.api import DEFENCES
        import no_such_module_for_this_test
        """, 2, "ModuleNotFoundError: No module named 'no_such_module_for_this_test'"),
    "syntax error": ("""\
        from engine.api import DEFENCES
        def broken(:
        """, 2, "SyntaxError"),
    "registers a built-in's name": ("""\
        import torch
        from engine.api import DEFENCES, Defence

        @DEFENCES.register("jpeg")
        class Mine(Defence):
            def forward(self, x, generator):
                return x
        """, None, "defence 'jpeg' is already registered"),
    "registers a pyiqa metric's name": ("""\
        from engine.api import METRICS, Metric

        @METRICS.register("niqe")
        class Mine(Metric):
            def forward(self, x):
                return x.mean(dim=(1, 2, 3))
        """, 3, "metric 'niqe' already exists (a pyiqa metric)"),
    "a parameter without a default": ("""\
        from dataclasses import dataclass
        from engine.api import DEFENCES, Defence, param

        @dataclass
        class P:
            levels: int

        @DEFENCES.register("no-default")
        class Mine(Defence):
            Params = P
            def forward(self, x, generator):
                return x
        """, 4, "parameter 'levels' has no default"),
    "a preset its parameters refuse": ("""\
        from dataclasses import dataclass
        from engine.api import ATTACKS, Attack, param

        @ATTACKS.register("bad-preset")
        class Mine(Attack):
            presets = {"huge": {"nope": 1}}
            def run(self, x, metric, *, generator=None):
                yield from ()
        """, 4, "preset 'huge'"),
    "not the base class": ("""\
        from engine.api import METRICS

        @METRICS.register("not-a-metric")
        class Mine:
            def forward(self, x):
                return x
        """, 3, "is not a subclass of engine.api.Metric"),
    "registers nothing": ("""\
        x = 1
        """, None, "registers nothing"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_plugin_is_refused_with_file_and_line_and_leaves_no_trace(tmp_path, case):
    body, line, text = BAD[case]
    path = _bad(tmp_path, body)
    before = {k: r.names() for k, r in (("m", METRICS), ("a", ATTACKS), ("d", DEFENCES))}
    with pytest.raises(PluginError) as err:
        load_path(path)
    message = str(err.value)
    assert text in message and str(path) in message
    if line is not None:
        assert f"{path}:{line}" in message, message
    assert "\n" not in message
    assert before == {k: r.names() for k, r in (("m", METRICS), ("a", ATTACKS), ("d", DEFENCES))}
    assert loaded() == []


def test_a_plugin_failing_half_way_takes_back_what_it_registered(tmp_path):
    path = _bad(tmp_path, """\
        from engine.api import DEFENCES, Defence

        @DEFENCES.register("half-way-ok")
        class Fine(Defence):
            def forward(self, x, generator):
                return x

        raise RuntimeError("then it breaks")
        """)
    with pytest.raises(PluginError, match=rf"{path}:8: RuntimeError: then it breaks"):
        load_path(path)
    assert "half-way-ok" not in DEFENCES


def test_a_missing_path_and_a_non_python_file(tmp_path):
    with pytest.raises(PluginError, match="no such file or folder"):
        load_path(tmp_path / "nope.py")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PluginError, match=r"not a Python file"):
        load_path(tmp_path / "notes.txt")


def test_a_broken_installed_package_is_reported_and_the_others_load(entry_point_dist):
    (entry_point_dist / "iqa_lab_test_pkg" / "defence.py").write_text("raise ImportError('needs libfoo')\n")
    recs, errors = load_entry_points()
    assert [c for r in recs for c in r.components] == [("metric", "ep-sharp"), ("attack", "ep-ifgsm")]
    [error] = errors
    assert "iqa-lab-test-pkg 1.2" in str(error) and "ep-tv" in str(error)
    assert "defence.py:1: ImportError: needs libfoo" in str(error)
    assert "ep-tv" not in DEFENCES
