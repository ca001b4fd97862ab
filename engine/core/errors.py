"""What went wrong, in one line, and the exit code it ends with (CLI and GUI alike).

:func:`describe` turns any exception into ``(message, exit_code)``: expected failures
(an :class:`ExpectedError`, which carries its exit code: bad usage, an unreadable or
damaged store, an unreachable cluster, missing weights; a full disk; a permission
problem) get one line saying what, which file and what to
do; anything else is a bug: its traceback is saved to a file whose path the message
gives. The CLI prints the message and exits with the code; the GUI shows the message in
its log and, when :func:`needs_action` is true, in a dialog.

Example:
    >>> describe(UsageError("no metric given"))
    ('no metric given', 2)
"""
from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import time
import traceback
from pathlib import Path

EXIT_OK = 0
EXIT_PARTIAL = 1        # the run finished but some items failed
EXIT_USAGE = 2          # bad usage or configuration (names, options, paths, permissions, cluster)
EXIT_ALL_FAILED = 3     # no item could be computed
EXIT_STORE = 4          # a result store is unreadable, damaged or from a newer version
EXIT_DISK_FULL = 5      # the disk filled up; finished items are kept, resume on free space
EXIT_WEIGHTS = 6        # model weights are missing and cannot be downloaded
EXIT_INTERNAL = 70      # a bug: the message names the saved traceback
EXIT_INTERRUPTED = 130  # Ctrl-C: finished items are kept, run the same command again

#: every code with its meaning, for ``--help`` and the README
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_PARTIAL: "finished, but some items failed (see raw.csv's error column)",
    EXIT_USAGE: "bad usage or configuration: unknown name, bad option, --out is a file, "
                "permission denied, cluster unreachable",
    EXIT_ALL_FAILED: "no item could be computed",
    EXIT_STORE: "a store cannot be read: missing, damaged (see `check --salvage`) or made by a newer version",
    EXIT_DISK_FULL: "the disk is full: finished items are kept; free space and run the same command again",
    EXIT_WEIGHTS: "model weights are missing (the message names the file, URL and folder)",
    EXIT_INTERNAL: "internal error: a bug; the message gives the saved traceback file",
    EXIT_INTERRUPTED: "interrupted: finished items are kept; run the same command again to resume",
}


class ExpectedError(Exception):
    """An expected failure: its message is one line for the user, and it carries its exit code.

    Subclasses (usage, store, weights, back end, device, metric, parameter, unknown
    name, budget, calibration, study, training errors) set :attr:`exit_code`; they live
    with the code that raises them, and :func:`describe` needs to know none of them.
    """

    exit_code: int = EXIT_USAGE


class UsageError(ExpectedError):
    """Bad command-line usage or configuration (exit code 2)."""


class DiskFullError(OSError, ExpectedError):
    """The disk (or quota) filled up while writing ``path``; nothing committed was lost.

    Args:
        path: the file being written.
        needed: bytes the rest of the work is estimated to need, when known.
        done: what was finished before the disk filled (e.g. "12 of 40 items").
    """

    exit_code = EXIT_DISK_FULL

    def __init__(self, path: str | os.PathLike, needed: int | None = None, done: str = "") -> None:
        super().__init__(errno.ENOSPC, "no space left on device", str(path))
        self.path, self.needed, self.done = Path(path), needed, done

    def __str__(self) -> str:
        parts = [f"disk full while writing {self.path}"]
        if self.done:
            parts.append(f"{self.done} are saved")
        if self.needed:
            parts.append(f"the rest needs about {human_bytes(self.needed)}")
        return "; ".join(parts) + "; free some space and run the same command again to resume"


def human_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KB"`` (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def is_disk_full(exc: BaseException) -> bool:
    """An OSError for a full disk or quota, or SQLite's "database or disk is full"."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def crash_dir() -> Path:
    """Where tracebacks of unexpected errors are saved (``IQA_LAB_CRASH_DIR`` overrides)."""
    return Path(os.environ.get("IQA_LAB_CRASH_DIR") or Path(tempfile.gettempdir()) / "iqa-lab-crashes")


def save_traceback(exc: BaseException) -> Path | None:
    """Write the exception's traceback to a new file in :func:`crash_dir`; its path, or None."""
    try:
        folder = crash_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
        path.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                        encoding="utf-8")
        return path
    except OSError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_message(exc: OSError) -> tuple[str, int] | None:
    where = f" {exc.filename}" if exc.filename else ""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied:{where}; choose a folder you can write to, or fix its permissions", EXIT_USAGE
    if exc.errno == errno.EROFS:
        return f"read-only file system:{where}; choose a writable folder", EXIT_USAGE
    if isinstance(exc, FileExistsError):
        return f"{exc.filename or 'path'} exists and is a file; --out must be a folder (new or existing)", EXIT_USAGE
    if isinstance(exc, (NotADirectoryError, IsADirectoryError, FileNotFoundError)):
        return f"{exc.strerror or _first_line(exc)}:{where}; check the path", EXIT_USAGE
    return None


def describe(exc: BaseException, *, save: bool = True) -> tuple[str, int]:
    """One clear line for ``exc`` and the exit code it maps to.

    Args:
        exc: any exception (or KeyboardInterrupt).
        save: for an unexpected exception, save its traceback (the path is in the message).

    Returns:
        ``(message, exit_code)``; the codes are :data:`EXIT_CODES`.
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; finished items are kept — run the same command again to resume", EXIT_INTERRUPTED
    if isinstance(exc, DiskFullError):
        return str(exc), EXIT_DISK_FULL
    if is_disk_full(exc):
        where = getattr(exc, "filename", None)
        return str(DiskFullError(where or "the output folder")), EXIT_DISK_FULL
    if isinstance(exc, ExpectedError):
        return _first_line(exc), exc.exit_code
    if isinstance(exc, sqlite3.DatabaseError):
        return (f"the result store cannot be read ({_first_line(exc)}); run `python main.py check STORE` "
                "to see what is readable", EXIT_STORE)
    if isinstance(exc, OSError):
        mapped = _os_message(exc)
        if mapped:
            return mapped
    where = save_traceback(exc) if save else None
    tail = f"; the traceback is in {where} — please report it" if where else "; please report it"
    return f"internal error: {type(exc).__name__}: {_first_line(exc)}{tail}", EXIT_INTERNAL


def needs_action(code: int) -> bool:
    """Whether the user must act (the GUI shows a dialog besides the log line)."""
    return code not in (EXIT_OK, EXIT_PARTIAL, EXIT_INTERRUPTED)


def epilog() -> str:
    """The exit-code table for ``--help``."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
