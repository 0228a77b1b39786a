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

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from distill_core.config import DataConfig
from distill_core.errors import DatasetError

CHUNK_ROWS = 8192
ARROW_FORMATS = ("parquet", "hf")
Chunk = tuple[list[str], list[str] | None, list]  # texts, pairs (None without a pair column), label ids


def source_digest(path: str | Path) -> str:
    """A hash of a split's bytes: one file, or every file of a save_to_disk directory."""
    from distill_core.teacher_cache import checkpoint_digest, file_digest

    path = Path(path)
    return checkpoint_digest(path) if path.is_dir() else file_digest(path)


def iter_rows(path: str | Path, data: DataConfig, labels: list[str], name: str) -> Iterator[tuple[Any, ...]]:
    """(text, pair or None, label id or ids) for every example of the file, in file order."""
    from distill_core import data as text_data

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

def arrow_files(path: Path, name: str) -> list[Path]:
    """The Arrow IPC stream files of a save_to_disk directory, in order (refuses anything else)."""
    if (path / "dataset_dict.json").is_file():
        splits = ", ".join(sorted(p.name for p in path.iterdir() if p.is_dir()))
        raise DatasetError(f"{path.name} is a DatasetDict (splits: {splits}); give one split's directory, "
                           f"e.g. {path.name}/train.", field=f"data.{name}")
    state = path / "state.json"
    if not path.is_dir() or not state.is_file():
        raise DatasetError(f"The {name} path {path} is not a Hugging Face save_to_disk directory (it has no "
                           "state.json).", field=f"data.{name}")
    try:
        files = [entry["filename"] for entry in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (ValueError, KeyError, TypeError):
        raise DatasetError(f"{path.name}/state.json has no list of data files (_data_files).",
                           field=f"data.{name}") from None
    out = []
    for file in files:
        resolved = (path / str(file)).resolve()
        if resolved.parent != path.resolve() or not resolved.is_file():  # never read outside the directory
            raise DatasetError(f"{path.name}/state.json names a data file {file!r} that is not in the directory.",
                               field=f"data.{name}")
        out.append(resolved)
    return out


def _batches(path: Path, name: str, columns: list[str] | None = None) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.is_dir():
            for file in arrow_files(path, name):
                with pa.memory_map(str(file)) as source:
                    reader = pa.ipc.open_stream(source)
                    yield from reader
        else:
            if not path.is_file():
                raise DatasetError(f"The {name} file {path} does not exist.", field=f"data.{name}")
            parquet = pq.ParquetFile(str(path))
            yield from parquet.iter_batches(batch_size=CHUNK_ROWS, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        kind = "Hugging Face save_to_disk directory" if path.is_dir() else "Parquet file"
        raise DatasetError(f"{path.name} cannot be read as a {kind} ({exc}).", field=f"data.{name}") from None


def arrow_schema_names(path: Path, name: str) -> list[str]:
    """The column names of a Parquet file or a save_to_disk directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.is_dir():
            files = arrow_files(path, name)
            if not files:
                return []
            with pa.memory_map(str(files[0])) as source:
                return list(pa.ipc.open_stream(source).schema.names)
        return list(pq.ParquetFile(str(path)).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        kind = "Hugging Face save_to_disk directory" if path.is_dir() else "Parquet file"
        raise DatasetError(f"{path.name} cannot be read as a {kind} ({exc}).", field=f"data.{name}") from None


def arrow_columns(path: Path, data: DataConfig, name: str) -> list[str]:
    """The (text, label[, pair]) column names, checked against the schema."""
    from distill_core.data import column_index, data_columns

    if not path.exists():
        raise DatasetError(f"The {name} file {path} does not exist.", field=f"data.{name}")
    names = arrow_schema_names(path, name)
    chosen = []
    for key, column in data_columns(data):
        index = column_index(column)
        if index is not None and str(column) not in names:
            if not 0 <= index < len(names):
                raise DatasetError(f"{path.name}: data.{key}={index} but the data has only {len(names)} column(s) "
                                   f"(columns count from 0): {', '.join(names)}.", field=f"data.{key}")
            column = names[index]
        if str(column) not in names:
            raise DatasetError(f"{path.name}: no column {str(column)!r} for data.{key}; it has: {', '.join(names)}.",
                               field=f"data.{key}")
        chosen.append(str(column))
    return chosen


def arrow_rows(path: Path, data: DataConfig, name: str) -> Iterator[tuple[int, tuple[str, str | None, Any]]]:
    """(row number, (text, pair, raw label)) of a Parquet file or save_to_disk directory."""
    columns = arrow_columns(path, data, name)
    row_no = 0
    for batch in _batches(path, name, sorted(set(columns))):
        values = [batch.column(batch.schema.get_field_index(c)).to_pylist() for c in columns]
        for i in range(batch.num_rows):
            row_no += 1
            text, label, *pair = (v[i] for v in values)
            if text is None or label is None or (pair and pair[0] is None):
                empty = columns[0] if text is None else columns[1] if label is None else columns[2]
                raise DatasetError(f"{path.name} row {row_no}: column {empty!r} is empty (null).")
            if not isinstance(text, str) or (pair and not isinstance(pair[0], str)):
                raise DatasetError(f"{path.name} row {row_no}: the text column {columns[0]!r} holds "
                                   f"{type(text).__name__}, not text.", field="data.text_column")
            if "\x00" in text or (pair and "\x00" in pair[0]):
                raise DatasetError(f"{path.name} row {row_no}: the text contains a NUL character.")
            yield row_no, (text, pair[0] if pair else None, label)
