"""The plug-in loader's one error."""
from __future__ import annotations

from engine.core.errors import EXIT_USAGE, ExpectedError


class PluginError(ExpectedError):
    """A plug-in could not be loaded or misbehaved; the message names its file and line.

    Attributes:
        source: the plug-in's file, folder or package.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(message)
        self.source = source
