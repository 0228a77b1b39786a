"""A small registry by name, shared by students, losses and (later) presets and schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from distill_core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects of one kind.

    >>> students = Registry("student", field="student.type")
    >>> @students.register("textcnn")
    ... class TextCNN: ...
    >>> students.get("textcnn") is TextCNN
    True
    """

    def __init__(self, kind: str, field: str | None = None):
        self.kind = kind
        self.field = field  # config path blamed by the unknown-name error
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under `name`."""

        def decorator(obj: T) -> T:
            assert name not in self._items, f"{self.kind} {name!r} is registered twice"
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}; known: {', '.join(self.names())}", field=self.field) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def ordered(self) -> list[str]:
        """The names in the order they were registered (the order menus and messages list them in)."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
