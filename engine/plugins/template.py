"""``new-plugin``: a working plug-in file of each kind, from the templates in ``templates/``.

Each template is a small real component (a sharpness metric, a total-variation
purifier, I-FGSM from a random start) with a test that ``python -m pytest FILE`` runs.
"""
from __future__ import annotations

import re
from pathlib import Path

from engine.plugins.errors import PluginError

KINDS = ("metric", "attack", "defence")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def identifier(name: str) -> str:
    """``my-sharpness`` → ``MySharpness`` (the class name)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)


def render(kind: str, name: str, file_name: str) -> str:
    """The template of ``kind`` for component ``name``, saved as ``file_name``.

    Raises:
        PluginError: an unknown kind, or a name that is not lower-case letters, digits, - and _.
    """
    if kind not in KINDS:
        raise PluginError(f"new-plugin: kind {kind!r}: use one of {', '.join(KINDS)}")
    if not _NAME.match(name):
        raise PluginError(f"new-plugin: name {name!r}: use lower-case letters, digits, '-' and '_', "
                          "starting with a letter (it is the registry name, e.g. my-sharpness)")
    text = (Path(__file__).parent / "templates" / f"{kind}.py.tmpl").read_text(encoding="utf-8")
    return (text.replace("__IDENT__", identifier(name)).replace("__NAME__", name)
            .replace("__FILE__", file_name))


def write(kind: str, name: str, out: str | None = None, *, force: bool = False) -> Path:
    """Write the template to ``out`` (default ``NAME.py`` with ``-`` as ``_``); its path.

    Raises:
        PluginError: the file exists (and not ``force``), or the kind or name is bad.
    """
    path = Path(out) if out else Path(name.replace("-", "_") + ".py")
    if path.suffix != ".py":
        raise PluginError(f"new-plugin: --out {path}: give a .py file")
    text = render(kind, name, path.name)
    if path.exists() and not force:
        raise PluginError(f"new-plugin: {path} exists; give another --out or --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
