"""What a Ray worker does with the plug-ins a run sends (without Ray: the worker's own
object): the files load from their sent source, an edited file replaces its old
version, and an item needing a component nobody provides here gets a message naming
the plug-in."""
from __future__ import annotations

from engine.api import DEFENCES, METRICS
from engine.plugins import load_path
from engine.plugins.records import ray_payload
from engine.plugins.remote import WorkerPlugins
from engine.spec.experiment import Experiment
from tests.engine.plugins.conftest import write_plugin


def _exp(**kw) -> Experiment:
    return Experiment(**{"images": ["a.png"], "metrics": ["niqe"], "attacks": ["fgsm"], **kw})


def test_sent_sources_load_and_an_edited_file_replaces_its_old_version(tmp_path, monkeypatch):
    from engine.plugins import remote

    monkeypatch.setattr(remote, "CACHE", tmp_path / "cache")
    path = write_plugin(tmp_path, "defence", "sent-tv")
    load_path(path)
    payload = ray_payload(_exp(defences=["sent-tv"]))
    [sent] = payload["files"]
    assert sent["source"] == str(path) and sent["texts"] == {"sent_tv.py": path.read_text()}
    DEFENCES.unregister("sent-tv")  # as on a fresh worker
    worker = WorkerPlugins()
    assert worker.load(payload) == []
    cls = DEFENCES.get("sent-tv")
    assert cls.plugin.startswith("file ") and str(tmp_path / "cache") in cls.plugin
    assert worker.load(payload) == [] and DEFENCES.get("sent-tv") is cls  # same source: nothing to do
    edited = dict(sent, sha256="0" * 64, texts={"sent_tv.py": path.read_text().replace("0.05,", "0.07,")})
    assert worker.load({"files": [edited], "packages": []}) == []
    assert DEFENCES.get("sent-tv") is not cls and DEFENCES.get("sent-tv")().params.weight == 0.07


def test_an_item_whose_package_is_missing_here_names_it():
    worker = WorkerPlugins()
    worker.load({"files": [], "packages": [{"name": "my-iqa", "version": "2.0", "components": ["metric:gone"]}]})
    item = _exp(metrics=["gone"]).items()[0]
    assert worker.item_error(item) == ("plug-in package my-iqa 2.0 (provides metric 'gone') is not installed on "
                                       "this Ray worker; install it on every node")
    assert worker.item_error(_exp().items()[0]) is None
    assert "gone" not in METRICS
