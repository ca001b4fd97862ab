"""``python main.py schema [--out FILE]``: the experiment's JSON Schema, for editors.

Every key of a ``--config`` file with its type, range and description
(:func:`engine.spec.schema.json_schema`); ``run`` checks a config against the same schema.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    s = sub.add_parser("schema", help="write the JSON Schema of an experiment config (--config)")
    s.add_argument("--out", default=None, help="write it to this file (default: standard output)")
    s.set_defaults(func=cmd_schema)
    return s


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
