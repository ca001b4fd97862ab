"""Plug-ins: metrics, attacks and defences of your own, loaded into the registries.

One loader (:mod:`engine.plugins.loader`), three ways in:

1. an installed package declaring entry points in the groups ``iqa_lab.metrics``,
   ``iqa_lab.attacks`` and ``iqa_lab.defences`` (:func:`load_entry_points`);
2. a Python file or folder (:func:`load_path`): ``--plugin PATH`` on every command, the
   experiment JSON's ``plugins`` list, ``IQA_LAB_PLUGINS`` (``os.pathsep``-separated)
   for the CLI and the GUI;
3. a TorchScript model as a metric, ``torchscript:path=m.pt:lower_better=0:range=0,1``
   (a built-in metric, :mod:`engine.metrics.torchscript`; nothing to load).

A plug-in imports :mod:`engine.api` only. What it registers is checked on load
(:mod:`engine.plugins.checks`); a bad one is rolled back and reported with its file and
line (:class:`PluginError`), and the rest of the lab keeps working.
"""
from __future__ import annotations

from engine.plugins.loader import (
    ENTRY_POINT_GROUPS,
    ENV_VAR,
    LoadedPlugin,
    PluginError,
    env_paths,
    isolated,
    load_entry_points,
    load_path,
    load_paths,
    loaded,
    origin_of,
    unload,
)

__all__ = ["ENTRY_POINT_GROUPS", "ENV_VAR", "LoadedPlugin", "PluginError", "env_paths", "isolated",
           "load_entry_points", "load_path", "load_paths", "loaded", "origin_of", "unload"]
