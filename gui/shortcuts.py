"""The menus' keyboard shortcuts, one table: the menus bind them, the Help page lists them."""
from __future__ import annotations

#: (menu, entry, shortcut) shown by Help → Keyboard shortcuts
SHORTCUTS: list[tuple[str, str, str]] = [
    ("File", "Open folder…", "Ctrl+O"),
    ("File", "Quit", "Ctrl+Q"),
    ("Run", "Run", "Ctrl+R"),
    ("Run", "Preview plan…", "Ctrl+Shift+R"),
    ("Run", "Cancel", "Ctrl+."),
    ("Help", "Score definitions", "F1"),
]
