"""Entry point: ``python main.py [GUI options]`` starts the desktop app; ``python main.py run|list|export|report …``
runs headless (see ``python main.py --help``)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (not argv[0].startswith("-") or argv[0] in ("-h", "--help")):
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
