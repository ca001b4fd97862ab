"""``python main.py check STORE [--salvage OUT]``: a store's integrity, and a copy of what is readable."""
from __future__ import annotations

import argparse

from engine.store.paths import store_file
from engine.core.errors import EXIT_OK, EXIT_STORE, epilog


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("check", help="check a store's integrity; --salvage copies what is readable",
                       epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("store", help="results.sqlite or the folder holding it")
    c.add_argument("--salvage", metavar="OUT", default=None,
                   help="copy every readable experiment, item and row into a new store OUT")
    c.set_defaults(func=cmd_check)

    return c


def cmd_check(args: argparse.Namespace) -> int:
    """Integrity check and readable counts; with ``--salvage`` a new store of what is readable."""
    from engine.store.check import check_store, salvage_store

    report = check_store(store_file(args.store))
    print(report.text())
    if args.salvage:
        target = store_file(args.salvage)
        counts = salvage_store(report.path, target)
        print(f"salvaged into {target}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
        return EXIT_OK
    return EXIT_OK if report.ok else EXIT_STORE
