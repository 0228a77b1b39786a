"""Stream a split's rows from disk without holding the file: TSV/CSV/JSONL, Parquet, HF save_to_disk.

    iter_chunks(path, data, labels, name) -> (texts, pairs, label ids) a few thousand rows at a time

Text files are read line by line (the same row rules and messages as data.read_split, which reads
them whole). Parquet files and Hugging Face `save_to_disk` directories are read with pyarrow one
record batch at a time: a Parquet row group, or a batch of the directory's Arrow IPC stream files
(listed in its state.json), memory-mapped. `datasets` is not needed to read them; only pyarrow.
Columns are names (or 0-based indices into the schema); a label is a class name, an index into the
label list, or a list of either (multi-label). Rows count from 1 in messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from distill_core import data as text_data
from distill_core.arrow_rows import ARROW_FORMATS, CHUNK_ROWS, arrow_rows  # noqa: F401  (webapp reads these here)
from distill_core.config import DataConfig
from distill_core.errors import DatasetError

Chunk = tuple[list[str], list[str] | None, list]  # texts, pairs (None without a pair column), label ids


def source_digest(path: str | Path) -> str:
    """A hash of a split's bytes: one file, or every file of a save_to_disk directory."""
    from distill_core.teacher_cache import checkpoint_digest, file_digest

    path = Path(path)
    return checkpoint_digest(path) if path.is_dir() else file_digest(path)


def iter_rows(path: str | Path, data: DataConfig, labels: list[str], name: str) -> Iterator[tuple[Any, ...]]:
    """(text, pair or None, label id or ids) for every example of the file, in file order."""
    path = Path(path)
    where = path.name
    label_index = {label: i for i, label in enumerate(labels)}
    if data.format in ARROW_FORMATS:
        rows = arrow_rows(path, data, name)
    else:
        text_data.exists(path, name)
        if path.stat().st_size == 0:
            raise DatasetError(f"The {name} file {where} is empty.", field=f"data.{name}")
        lines = text_lines(path, name)
        rows = (text_data.jsonl_iter(lines, where, data) if data.format == "jsonl"
                else text_data.delimited_iter(lines, where, data))
    any_row = False
    for line_no, (text, pair, label) in rows:
        any_row = True
        yield text, pair, text_data.label_ids(label, data, label_index, labels, where, line_no)
    if not any_row:
        raise DatasetError(f"The {name} file {where} has no examples (only a header or blank lines).",
                           field=f"data.{name}")


def iter_chunks(path: str | Path, data: DataConfig, labels: list[str], name: str, rows: int = CHUNK_ROWS,
                keep: np.ndarray | None = None) -> Iterator[Chunk]:
    """iter_rows grouped `rows` at a time; `keep` (a bool per file row) selects the rows to yield."""
    has_pairs = data.text_pair_column is not None
    texts, pairs, ys = [], [], []
    for i, (text, pair, y) in enumerate(iter_rows(path, data, labels, name)):
        if keep is not None and not keep[i]:
            continue
        texts.append(text)
        pairs.append(pair)
        ys.append(y)
        if len(texts) == rows:
            yield texts, pairs if has_pairs else None, ys
            texts, pairs, ys = [], [], []
    if texts:
        yield texts, pairs if has_pairs else None, ys


def count_rows(path: str | Path, data: DataConfig, labels: list[str], name: str) -> int:
    """The number of examples in the file (every row checked, as a run reads them)."""
    return sum(1 for _ in iter_rows(path, data, labels, name))


def text_lines(path: Path, name: str) -> Iterator[str]:
    """The file's lines (endings kept, for csv); refuses non-UTF-8 bytes and NUL with the line number."""
    line_no = 0
    with open(path, encoding="utf-8-sig", newline="") as fh:
        try:
            for line in fh:
                line_no += 1
                if "\x00" in line:
                    raise DatasetError(f"{path.name} line {line_no}: the file contains a NUL character; is it a "
                                       "binary file? Remove it and upload the file again.", field=f"data.{name}")
                yield line
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path.name} line {line_no + 1}: the file is not UTF-8 text ({exc.reason}); "
                               "re-save it as UTF-8.", field=f"data.{name}") from None


# --- Arrow: Parquet files and save_to_disk directories ---------------------------------------
