"""A small name → class registry (pyiqa style: adding a component is one decorator)."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from engine.core.errors import ExpectedError

T = TypeVar("T")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'niqe'?)"`` for a near miss among ``known``, else ``""``."""
    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class UnknownComponent(ExpectedError, KeyError):
    """Raised for a name that is not registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls
        return deco

    def unregister(self, name: str) -> None:
        """Remove a registration (for tests and plug-ins that are unloaded)."""
        self._items.pop(name, None)

    def snapshot(self) -> dict[str, type[T]]:
        """Every registration, to :meth:`restore` later (plug-in tests and rollbacks)."""
        return dict(self._items)

    def restore(self, items: dict[str, type[T]]) -> None:
        """Put back what :meth:`snapshot` returned (names registered since are dropped)."""
        self._items = dict(items)

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownComponent(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._items)}; "
                f"known: {', '.join(sorted(self._items))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
