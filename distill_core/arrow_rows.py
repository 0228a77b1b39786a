"""Rows of Parquet files and Hugging Face `save_to_disk` directories, read with pyarrow one record batch
at a time, and the column rules every format shares. Below data.py and readers.py (both use it; it
imports neither).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distill_core.config import DataConfig
from distill_core.errors import DatasetError

ARROW_FORMATS = ("parquet", "hf")
CHUNK_ROWS = 8192  # rows per record batch read


def column_index(column: int | str) -> int | None:
    """A column given as an index (an int, or a string of ASCII digits) as an int; None for a column name.

    str.isdigit() also accepts "²" and "١", which int() refuses or reads as another number.
    """
    if isinstance(column, int):
        return column
    return int(column) if column.isascii() and column.isdecimal() else None


def data_columns(data: DataConfig) -> list[tuple[str, int | str]]:
    """The columns to read, in the order (text, label[, pair])."""
    cols: list[tuple[str, int | str]] = [("text_column", data.text_column), ("label_column", data.label_column)]
    if data.text_pair_column is not None:
        cols.append(("text_pair_column", data.text_pair_column))
    return cols


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
