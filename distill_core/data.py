"""Read text-classification splits (TSV, CSV, JSONL, Parquet, HF save_to_disk) as a DataConfig describes them.

Parquet and save_to_disk directories are read through readers.py (pyarrow); a run streams every
format through readers.iter_chunks instead of holding a Split (streaming.py).

Every problem a user can cause raises DatasetError naming the file and, where there is one,
the line: a missing file, bytes that are not UTF-8, a NUL character, an empty file, a missing
column, a ragged row, a field past csv's size limit, a JSONL line json cannot take, a label
outside the label list.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill_core.arrow_rows import arrow_rows, column_index, data_columns
from distill_core.config import DataConfig
from distill_core.errors import DatasetError
from distill_core.untrusted import UntrustedInput
from distill_core.untrusted import loads as loads_json

log = logging.getLogger(__name__)


@dataclass
class Split:
    """One split: parallel lists of texts, optional second texts and class indices."""

    name: str
    path: str
    texts: list[str]
    pairs: list[str] | None
    labels: list[int] | list[list[int]]  # class index, or the indices of every label (multi-label)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int], name: str) -> Split:
        pairs = [self.pairs[i] for i in indices] if self.pairs is not None else None
        return Split(name, self.path, [self.texts[i] for i in indices], pairs, [self.labels[i] for i in indices])


def read_split(path: str | Path, data: DataConfig, labels: list[str], name: str = "train") -> Split:
    """Read one file into a Split; `labels` are the class names in index order."""
    if data.format in ("parquet", "hf"):
        return _arrow_split(path, data, labels, name)
    return _parse_split(path, _read_text(Path(path), name), data, labels, name)


def _arrow_split(path: str | Path, data: DataConfig, labels: list[str], name: str, rows: int | None = None) -> Split:
    label_index = {label: i for i, label in enumerate(labels)}
    texts, pairs, ys = [], [], []
    for line_no, (text, pair, label) in arrow_rows(Path(path), data, name):
        if rows is not None and len(texts) == rows:
            break
        texts.append(text)
        pairs.append(pair)
        ys.append(label_ids(label, data, label_index, labels, Path(path).name, line_no))
    if not texts and rows != 0:
        raise DatasetError(f"The {name} file {Path(path).name} has no examples.", field=f"data.{name}")
    log.info("Read %d %s examples from %s", len(texts), name, path)
    return Split(name, str(path), texts, pairs if data.text_pair_column is not None else None, ys)


def read_head(path: str | Path, data: DataConfig, labels: list[str], name: str = "train", rows: int = 20,
              max_bytes: int = 1 << 20) -> Split:
    """Read only the first `rows` examples of a file, with the same rules as read_split (a preview).

    Reads whole lines from the start until it has enough (or `max_bytes`), so a preview of a
    multi-gigabyte file costs what it shows. A CSV field quoted across lines may need more lines
    than it has rows; the budget leaves room for that.
    """
    if data.format in ("parquet", "hf"):  # record batches: reads about one batch
        return _arrow_split(path, data, labels, name, rows)
    path = Path(path)
    exists(path, name)
    wanted = rows * 4 + 1 + int(data.has_header)
    chunks, size = [], 0
    with path.open("rb") as fh:
        while len(chunks) < wanted and (line := fh.readline(max_bytes + 1)):
            if len(line) > max_bytes:  # one line past the budget: never read it whole
                raise DatasetError(f"{path.name} line {len(chunks) + 1} is longer than {max_bytes // 1024} KB; "
                                   "is it a text file with one example per line?", field=f"data.{name}")
            if size + len(line) > max_bytes:
                break
            chunks.append(line)
            size += len(line)
    text = _checked(_decode(b"".join(chunks), path, name), path, name)
    split = _parse_split(path, text, data, labels, name)
    return split.subset(list(range(min(rows, len(split)))), name)


def _parse_split(path: str | Path, text: str, data: DataConfig, labels: list[str], name: str) -> Split:
    where = Path(path).name
    if data.format == "jsonl":
        rows = _jsonl_rows(text, where, data)
    else:
        rows = _delimited_rows(text, where, data)
    label_index = {label: i for i, label in enumerate(labels)}
    texts, pairs, ys = [], [], []
    for line_no, row in rows:
        texts.append(row[0])
        pairs.append(row[1])
        ys.append(label_ids(row[2], data, label_index, labels, where, line_no))
    if not texts:
        raise DatasetError(f"The {name} file {where} has no examples (only a header or blank lines).",
                           field=f"data.{name}")
    has_pairs = data.text_pair_column is not None
    log.info("Read %d %s examples from %s", len(texts), name, path)
    return Split(name, str(path), texts, pairs if has_pairs else None, ys)


def label_ids(value: Any, data: DataConfig, label_index: dict[str, int], labels: list[str], where: str,
              line_no: int) -> int | list[int]:
    """A row's raw label as a class index, or the sorted indices of its labels (multi-label)."""
    if not data.multi_label:
        return _label_id(value, label_index, labels, where, line_no)
    values = value if isinstance(value, list) else [v for v in str(value).split(data.label_separator) if v.strip()]
    return sorted({_label_id(v, label_index, labels, where, line_no) for v in values})


def _read_text(path: Path, name: str) -> str:
    """The file's text; refuses a missing, empty, non-UTF-8 or binary (NUL) file with a message."""
    exists(path, name)
    return _checked(_decode(path.read_bytes(), path, name), path, name)


def exists(path: Path, name: str) -> None:
    if not path.is_file():
        raise DatasetError(f"The {name} file {path} does not exist (relative paths start at the working "
                           f"directory {Path.cwd()}).", field=f"data.{name}")


def _checked(text: str, path: Path, name: str) -> str:
    if not text.strip():
        raise DatasetError(f"The {name} file {path.name} is empty.", field=f"data.{name}")
    if "\x00" in text:  # no database can store it, and a text file has none
        line_no = text.count("\n", 0, text.index("\x00")) + 1
        raise DatasetError(f"{path.name} line {line_no}: the file contains a NUL character; is it a binary file? "
                           "Remove it and upload the file again.", field=f"data.{name}")
    return text


def _decode(raw: bytes, path: Path, name: str = "train") -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_no = raw.count(b"\n", 0, exc.start) + 1
        raise DatasetError(f"{path.name} line {line_no}: the file is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start}); re-save it as UTF-8.", field=f"data.{name}") from None


Row = tuple[str, str | None, Any]  # (text, pair, raw label)


def _delimited_rows(text: str, where: str, data: DataConfig) -> list[tuple[int, Row]]:
    """Rows of a TSV/CSV file as (1-based line number, (text, pair, label))."""
    return list(delimited_iter(io.StringIO(text), where, data))


def delimited_iter(lines: Iterable[str], where: str, data: DataConfig) -> Iterator[tuple[int, Row]]:
    """delimited_rows over lines as they are read (a file object streams)."""
    if data.format == "tsv":  # titles may hold quote characters; a TSV field never spans lines
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines)
    columns, width, header_seen = None, 0, False
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            line_no = reader.line_num
            if data.has_header and not header_seen:
                header_seen = True
                names = [h.strip() for h in fields]
                columns = [_header_column(c, names, where, key) for key, c in data_columns(data)]
                width = len(fields)
                continue
            if columns is None:
                columns = [_index_column(c, key) for key, c in data_columns(data)]
                width = len(fields)
                for (key, _), c in zip(data_columns(data), columns, strict=True):
                    if c >= width:
                        raise DatasetError(f"{where} line {line_no}: data.{key}={c} but the row has only {width} "
                                           f"column(s) (columns count from 0).", field=f"data.{key}")
            if len(fields) != width:
                raise DatasetError(f"{where} line {line_no}: expected {width} columns but found {len(fields)} "
                                   f"(a stray {'tab' if data.format == 'tsv' else 'comma'} or a missing field?).")
            values = [fields[c] for c in columns]
            yield line_no, (values[0], values[2] if len(values) == 3 else None, values[1].strip())
    except csv.Error as exc:
        raise DatasetError(f"{where} line {reader.line_num}: {csv_problem(exc, data.format)}") from None


def _header_column(column: int | str, names: list[str], where: str, key: str) -> int:
    if isinstance(column, int):
        return column if column < len(names) else _missing(where, key, column, names)
    if column not in names:
        _missing(where, key, column, names)
    return names.index(column)


def _missing(where: str, key: str, column: int | str, names: list[str]) -> int:
    raise DatasetError(f"{where} line 1: the header has no column {column!r} for data.{key}; it has: "
                       f"{', '.join(names)}.", field=f"data.{key}")


def field_too_long(format: str) -> str:
    return (f"a field is longer than {csv.field_size_limit():,} characters; is the file really "
            f"{format.upper()} (one example per line, {'tab' if format == 'tsv' else 'comma'}-separated)?")


def csv_problem(exc: csv.Error, format: str) -> str:
    """What a csv.Error means for the person who uploaded the file."""
    if "field larger than field limit" in str(exc):
        return field_too_long(format)
    return f"cannot be read as {format.upper()} ({exc})."


def _index_column(column: int | str, key: str) -> int:
    index = column_index(column)
    if index is None:
        raise DatasetError(f"data.{key}={column!r} is a column name, but the file has no header: set "
                           f"data.has_header to true or give a 0-based column index (digits 0-9).",
                           field=f"data.{key}")
    column = index
    if column < 0:
        raise DatasetError(f"data.{key} must be 0 or more (got {column}).", field=f"data.{key}")
    return column


def _jsonl_rows(text: str, where: str, data: DataConfig) -> list[tuple[int, Row]]:
    return list(jsonl_iter(text.splitlines(), where, data))


def jsonl_iter(lines: Iterable[str], where: str, data: DataConfig) -> Iterator[tuple[int, Row]]:
    """(line number, (text, pair, raw label)) of JSONL lines as they are read."""
    for line_no, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            obj = loads_json(line)
        except UntrustedInput as exc:
            raise DatasetError(f"{where} line {line_no}: {exc.message}") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{where} line {line_no}: expected a JSON object, found {type(obj).__name__}.")
        values = []
        for key, column in data_columns(data):
            if str(column) not in obj:
                raise DatasetError(f"{where} line {line_no}: no key {str(column)!r} for data.{key}; the object has: "
                                   f"{', '.join(obj)}.", field=f"data.{key}")
            values.append(obj[str(column)])
        text_value, label, *pair = values
        yield line_no, (str(text_value), str(pair[0]) if pair else None, label)


def _label_id(value: Any, label_index: dict[str, int], labels: list[str], where: str, line_no: int) -> int:
    """A label value is a name from `labels`, else an integer index into it."""
    key = str(value).strip()
    if key in label_index:
        return label_index[key]
    if not isinstance(value, bool):
        try:
            index = int(key)
        except ValueError:
            index = -1
        if 0 <= index < len(labels):
            return index
    shown = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
    raise DatasetError(f"{where} line {line_no}: label {key!r} is neither a name in the label list ({shown}) "
                       f"nor an index from 0 to {len(labels) - 1}.", field="data.labels")
