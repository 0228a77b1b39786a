"""Each option declared once: its default, bounds, choices and help text, as dataclass field metadata.

    temperature: float = opt(2.0, "Softens the teacher's distribution ...", low=0, low_open=True, high=1000,
                             what="Temperature")

`check(obj)` validates a dataclass instance against its declarations (config.py and the students'
options call it, so the CLI refuses what the web form refuses). `declared(cls)` walks a config
class and its nested sections; the web form (webapp/experiments/option_fields.py), the API schema
built from that form, `python -m distill_core describe` and the option table of
docs/DISTILL_CORE.md (`python -m distill_core.options_doc`) are all generated from it. Choices
that a registry holds are given as `registry_names(module, attribute)`: the registry stays the
only list of those names, read when first needed (most registries import torch).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill_core.errors import ConfigError

Choices = tuple[str, ...] | Callable[[], Sequence[str]]


@dataclass(frozen=True)
class Option:
    """What a field accepts. Bounds apply to numbers, and to each item of a list of numbers."""

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is refused
    high_open: bool = False
    choices: Choices | None = None
    what: str = ""  # how a refusal names the option (default: its name)
    null: str = ""  # what null means, for an option that may be null ("1 - alpha")
    unset: Any = None  # a value meaning "not set" that the bounds do not apply to (0 = the preset's)
    length: tuple[int, int] | None = None  # a list's number of items (min, max)

    def names(self) -> tuple[str, ...]:
        """The allowed values (a registry's names, read now); () when any value of the type goes."""
        if self.choices is None:
            return ()
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def bounds_text(self) -> str:
        """'between 1 and 1000', 'greater than 0 and at most 10', 'at least 1', or ''."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            if not self.low_open and not self.high_open:
                return f"between {_num(low)} and {_num(high)}"
            if self.low_open and self.high_open:
                return f"between {_num(low)} and {_num(high)} (exclusive)"
            first = f"greater than {_num(low)}" if self.low_open else f"at least {_num(low)}"
            return f"{first} and " + (f"below {_num(high)}" if self.high_open else f"at most {_num(high)}")
        if low is not None:
            return f"greater than {_num(low)}" if self.low_open else f"at least {_num(low)}"
        if high is not None:
            return f"below {_num(high)}" if self.high_open else f"at most {_num(high)}"
        return ""

    def problem(self, value: Any, path: str, *, full_name: bool = False) -> str | None:
        """Why `value` of the option at `path` is refused, or None.

        A refused choice is named by its path; a number by `what`, else its name (or path, with full_name).
        """
        if value is None or (self.unset is not None and value == self.unset and not isinstance(value, bool)):
            return None
        names = self.names()
        if names and value not in names:
            return f"{path}={value!r} is not one of: {', '.join(names)}."
        what = self.what or (path if full_name else path.rsplit(".", 1)[-1])
        if isinstance(value, list):
            if self.length and not self.length[0] <= len(value) <= self.length[1]:
                low, high = self.length
                count = str(low) if low == high else f"{low} to {high}"
                return f"{what} must have {count} items (got {value!r})."
            for item in value:
                if isinstance(item, bool) or not isinstance(item, (int, float)) or not self._in_bounds(item):
                    return f"{what} must be a list of numbers {self.bounds_text()} (got {value!r})."
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or self._in_bounds(value):
            return None
        null = f", or null for {self.null}" if self.null else ""
        return f"{what} must be {self.bounds_text()}{null} (got {_num(value)})."

    def _in_bounds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def opt(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with its Option; a list default is copied for each instance."""
    option = Option(help=help, **kwargs)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"option": option})
    return field(default=default, metadata={"option": option})


def registry_names(module: str, attribute: str) -> Callable[[], tuple[str, ...]]:
    """Choices read from the registry `module.attribute`, in the order its entries were registered."""

    def names() -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(module), attribute).ordered())

    names.source = f"{module}.{attribute}"  # type: ignore[attr-defined]  (the docs name the registry)
    return names


@dataclass(frozen=True)
class Declared:
    """One declared option: its dotted path, type (as written), default and Option."""

    path: str
    type: str
    default: Any
    option: Option

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def section(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def declared(cls: type, prefix: str = "") -> list[Declared]:
    """Every option of `cls` and of its nested sections, in declaration order."""
    out: list[Declared] = []
    for f in dataclasses.fields(cls):
        default = default_of(f)
        if dataclasses.is_dataclass(default):
            out += declared(type(default), f"{prefix}{f.name}.")
        elif "option" in f.metadata:
            out.append(Declared(prefix + f.name, str(f.type), default, f.metadata["option"]))
    return out


def option_of(cls: type, name: str) -> Option:
    return next(f.metadata["option"] for f in dataclasses.fields(cls) if f.name == name)


def check(obj: Any, prefix: str = "", *, full_names: bool = False) -> None:
    """Raise ConfigError (on `prefix + name`) for the first field of `obj` its Option refuses."""
    for f in dataclasses.fields(obj):
        option = f.metadata.get("option")
        if option is not None:
            path = prefix + f.name
            message = option.problem(getattr(obj, f.name), path, full_name=full_names)
            if message:
                raise ConfigError(message, field=path)


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass `cls` from `raw`, recursing into nested dataclasses; unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"Unknown key(s) in {where}: {', '.join(unknown)}.", field=prefix + unknown[0])
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        f = fields[name]
        default = default_of(f)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{name} must be an object.", field=prefix + name)
            kwargs[name] = build(type(default), value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(value, str(f.type), prefix + name)
    return cls(**kwargs)


_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "list": "a list", "dict": "an object"}


def coerce(value: Any, annotation: str, path: str) -> Any:
    """Check `value` against the field's annotation ("int | str | None"); ints pass for floats."""
    allowed = [part.strip().split("[")[0] for part in annotation.split("|")]
    if value is None:
        if "None" in allowed:
            return None
        raise ConfigError(f"{path} must not be empty.", field=path)
    if isinstance(value, bool):
        ok = "bool" in allowed
    elif isinstance(value, int):
        ok = "int" in allowed or "float" in allowed
        if ok and "int" not in allowed:
            value = float(value)
    else:
        ok = any(isinstance(value, {"float": float, "str": str, "list": list, "dict": dict}.get(t, ())) for t in allowed)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES[t] for t in allowed if t in _TYPE_NAMES)
        raise ConfigError(f"{path} must be {wanted} (got {value!r}).", field=path)
    return value
