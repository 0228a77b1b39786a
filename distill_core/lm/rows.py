"""LM data read a line at a time: a bounded head for previews, a streamed pass for upload checks and lengths.

data.read_rows reads a whole file for a run; a web page may only read what it shows, and an upload
check should not hold a large file in memory. Rows are parsed with data._row (same keys, same
messages) from JSON decoded by untrusted.loads (NUL, unpaired surrogates, nesting and digit limits).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distill_core.errors import DatasetError
from distill_core.lm.data import Row, _row
from distill_core.lm.options import LMConfig
from distill_core.untrusted import UntrustedInput, loads

MAX_LINE_BYTES = 4 << 20  # one example; a longer line is not one prompt/response pair
HEAD_BYTES = 1 << 20  # what a preview reads at most
BINS = 24


def iter_rows(path: str | Path, options: LMConfig, name: str = "train", max_bytes: int | None = None
              ) -> Iterator[Row | dict[str, Any]]:
    """Rows of a JSONL (or .txt) file in order, line by line; stops quietly after `max_bytes` (None: the whole file).

    Chat rows stay {"messages": [...]} (rendering needs a tokenizer: data.render_chat). Raises
    DatasetError naming the line; an empty file raises too when read whole.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"The {name} file {path.name} does not exist.", field=f"data.{name}")
    text_file = path.suffix == ".txt"
    seen = read = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES:
                raise DatasetError(f"{path.name} line {number} is longer than {MAX_LINE_BYTES >> 20} MB; is it one "
                                   f"example per line?", field=f"data.{name}")
            read += len(raw)
            if max_bytes is not None and read > max_bytes:
                return
            line = _decode(raw, path.name, number, name)
            if not line.strip():
                continue
            seen += 1
            yield Row("", line.strip()) if text_file else _parse(line, options, f"{path.name} line {number}", name)
    if not seen and max_bytes is None:
        raise DatasetError(f"The {name} file {path.name} has no examples.", field=f"data.{name}")


def head(path: str | Path, options: LMConfig, rows: int, name: str = "train") -> list[Row | dict[str, Any]]:
    """The first `rows` examples, reading at most HEAD_BYTES of the file (a page costs what it shows)."""
    out = []
    for row in iter_rows(path, options, name, max_bytes=HEAD_BYTES):
        out.append(row)
        if len(out) >= rows:
            break
    return out


def plain_texts(row: Row | dict[str, Any]) -> tuple[str, str]:
    """(prompt, response) without a chat template: a conversation's earlier turns as "role: content" lines."""
    if isinstance(row, Row):
        return row.prompt, row.response
    messages = row["messages"]
    prompt = "\n".join(f"{m.get('role', '?')}: {_content(m)}" for m in messages[:-1])
    return prompt, _content(messages[-1])


def histogram(lengths: list[int], bins: int = BINS) -> dict[str, list[int]]:
    """{"edges": [low of each bin] + [past the last], "counts": [...]}: at most `bins` equal-width integer bins."""
    if not lengths:
        return {"edges": [], "counts": []}
    low, high = min(lengths), max(lengths)
    width = max(1, -(-(high - low + 1) // bins))  # ceil: every length falls in a bin
    counts = [0] * (-(-(high - low + 1) // width))
    for n in lengths:
        counts[(n - low) // width] += 1
    return {"edges": [low + i * width for i in range(len(counts) + 1)], "counts": counts}


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else str(content)


def _parse(line: str, options: LMConfig, where: str, name: str) -> Row | dict[str, Any]:
    try:
        record = loads(line)
    except UntrustedInput as exc:
        raise DatasetError(f"{where} is not JSON: {exc.message}", field=f"data.{name}") from None
    if not isinstance(record, dict):
        raise DatasetError(f"{where} is not a JSON object.", field=f"data.{name}")
    return _row(record, options, where)


def _decode(raw: bytes, file_name: str, number: int, name: str) -> str:
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{file_name} line {number} is not UTF-8 text ({exc.reason}); re-save it as UTF-8.",
                           field=f"data.{name}") from None
    if "\x00" in line:
        raise DatasetError(f"{file_name} line {number} contains a NUL character; is it a binary file?",
                           field=f"data.{name}")
    return line
