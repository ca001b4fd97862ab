"""``python main.py new-plugin metric|attack|defence NAME [--out FILE]``: a working plug-in file.

The file is a small real component registered as NAME, commented, with its own test
(``python -m pytest FILE``); ``docs/plugins.md`` walks through it.
"""
from __future__ import annotations

import argparse
import sys

from engine.core.errors import EXIT_OK


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("new-plugin", help="write a working plug-in file (metric, attack or defence) to start from")
    p.add_argument("kind", choices=["metric", "attack", "defence"])
    p.add_argument("name", help="the registry name, e.g. my-sharpness")
    p.add_argument("--out", default=None, help="the file to write (default NAME.py here)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_new_plugin)
    return p


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from engine.plugins.template import write

    path = write(args.kind, args.name, args.out, force=args.force)
    print(f"wrote {path}: {args.kind} {args.name!r}. Try it:\n"
          f"  python -m pytest {path}\n"
          f"  python main.py list --plugin {path}", file=sys.stderr)
    return EXIT_OK
