"""Text and JSON from outside (uploads, request bodies, checkpoint files), checked before anything keeps it.

Python's json module parses what Postgres then refuses ("\\u0000", unpaired surrogates such as
"\\ud800", NaN and Infinity) and fails in ways that are not a user's message: RecursionError on
deep nesting and a bare ValueError on integers longer than `sys.get_int_max_str_digits()`. Every
parser of JSON a user sends goes through `loads`, which turns all of these into one
`UntrustedInput` saying where.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

MAX_DEPTH = 64  # far deeper than any config, row or request body of ours
_SURROGATE = re.compile("[\ud800-\udfff]")  # json joins valid pairs, so any left is unpaired


class UntrustedInput(ValueError):
    """A message for the user; `path` holds the keys/indices leading to the bad value (may be empty)."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.message = message
        self.path = path

    @property
    def field(self) -> str | None:
        """The top-level key the bad value sits under (a form field, for a request body)."""
        return str(self.path[0]) if self.path else None


def text_problem(text: str) -> str | None:
    """What makes `text` unstorable ("contains a NUL character", ...), or None when it is fine."""
    if "\x00" in text:
        return "contains a NUL character"
    found = _SURROGATE.search(text)
    if found:
        return f"contains an unpaired surrogate (U+{ord(found.group()):04X}), which is not valid Unicode text"
    return None


def describe(path: tuple[str | int, ...]) -> str:
    """`stages[0].name` for ("stages", 0, "name"); "The value" for ()."""
    if not path:
        return "The value"
    out = str(path[0])[:60]
    for step in path[1:]:
        out += f"[{step}]" if isinstance(step, int) else f".{str(step)[:60]}"
    return out


def check_tree(value: Any, max_depth: int = MAX_DEPTH, root: tuple[str | int, ...] = ()) -> None:
    """Raise UntrustedInput at the first string (key or value) with a `text_problem`, or past `max_depth`.

    `root` prefixes the paths in messages (("stages",) for the JSON of the stages field). Iterative,
    so a structure json managed to build cannot overflow the stack here.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, (dict, list)) and len(path) - len(root) >= max_depth:
            raise UntrustedInput(f"The JSON is nested deeper than {max_depth} levels.", path[:len(root) + 1])
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise UntrustedInput(f"{describe(path)} {problem}.", path)
        elif isinstance(item, float) and not math.isfinite(item):  # NaN, Infinity, or 1e400 read as inf
            shown = "NaN" if math.isnan(item) else "-Infinity" if item < 0 else "Infinity"
            raise UntrustedInput(f"{describe(path)}: {shown} is not a number JSON allows; use a finite number.", path)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                problem = text_problem(key)
                if problem:
                    raise UntrustedInput(f"A key of {describe(path) if path else 'the object'} {problem}.", path)
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(item))))


def loads(data: str | bytes, max_depth: int = MAX_DEPTH, root: tuple[str | int, ...] = ()) -> Any:
    """json.loads for input from outside; UntrustedInput (never another error) when it cannot be kept.

    `root` names where the JSON came from, for the paths in messages (see `check_tree`).
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        value = json.loads(text)
    except UnicodeDecodeError:
        raise UntrustedInput("The JSON is not UTF-8 text.", root) from None
    except RecursionError:
        raise UntrustedInput(f"The JSON is nested too deeply (at most {max_depth} levels).", root) from None
    except json.JSONDecodeError as exc:
        raise UntrustedInput(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", root) from None
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise UntrustedInput(f"The JSON holds a number with more than {sys.get_int_max_str_digits():,} digits.",
                             root) from None
    check_tree(value, max_depth, root)
    return value
