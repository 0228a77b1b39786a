"""Read word vectors in the word2vec / GloVe text format, with bounds on everything an upload controls.

    [<count> <dim>]                  optional word2vec header
    <token> <v1> <v2> ... <v_dim>    one vector a line, fields split by whitespace

Every line must have the same number of values (the header's dim, else the first line's), each a
finite decimal number. A line longer than MAX_LINE_BYTES, more than MAX_ROWS vectors, a dim above
MAX_DIM, bytes that are not UTF-8, or a NUL are refused with the line number; nothing is guessed.
Only the tokens in `wanted` are kept, so memory follows the student's vocabulary, not the file.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from distill_core.errors import ConfigError

FIELD = "student.embedding_file"
MAX_LINE_BYTES = 1 << 16  # 64 KiB: 4096 values of 15 characters each
MAX_DIM = 4096
MAX_ROWS = 5_000_000  # more than GloVe 840B's 2.2 M


class WordVectorError(ConfigError):
    """A word-vector file that cannot be read; the message names the file's line."""

    def __init__(self, message: str):
        super().__init__(message, field=FIELD)


def read_word_vectors(path: str | Path, wanted: set[str] | None = None, *, check_all: bool = False,
                      max_rows: int = MAX_ROWS, max_line_bytes: int = MAX_LINE_BYTES
                      ) -> tuple[dict[str, torch.Tensor], int]:
    """({token: (dim,) float32} for the tokens in `wanted` (all when None), dim). Raises WordVectorError.

    Lines of other tokens are checked for their shape only, unless `check_all` parses their values too.
    """
    vectors, dim, _ = _read(Path(path), wanted, check_all, max_rows, max_line_bytes)
    return vectors, dim


def _read(path: Path, wanted: set[str] | None, check_all: bool, max_rows: int,
          max_line_bytes: int) -> tuple[dict[str, torch.Tensor], int, int]:
    name = path.name
    if not path.is_file():
        raise WordVectorError(f"The word-vector file {name} does not exist.")
    vectors: dict[str, torch.Tensor] = {}
    dim: int | None = None
    declared: int | None = None
    rows = 0
    with open(path, "rb") as fh:
        for line_no in itertools.count(1):
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                break
            if len(raw) > max_line_bytes:
                raise WordVectorError(f"{name} line {line_no} is longer than {max_line_bytes:,} bytes; is it a "
                                      f"word-vector text file (one vector a line)?")
            if b"\x00" in raw:
                raise WordVectorError(f"{name} line {line_no} holds a NUL byte; the file is binary, not the "
                                      f"word2vec/GloVe text format (save it with binary=False).")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise WordVectorError(f"{name} line {line_no} is not UTF-8 text.") from None
            parts = text.split()
            if not parts:
                continue
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):  # word2vec header
                declared, dim = int(parts[0]), int(parts[1])
                _check_dim(dim, name, line_no)
                continue
            if rows >= max_rows:
                raise WordVectorError(f"{name} has more than {max_rows:,} vectors; keep the most frequent words.")
            if dim is None:
                dim = len(parts) - 1
                _check_dim(dim, name, line_no)
            if len(parts) != dim + 1:
                raise WordVectorError(f"{name} line {line_no} has {len(parts) - 1} values where every vector has "
                                      f"{dim}.")
            rows += 1
            token = parts[0]
            keep = wanted is None or token in wanted
            if not keep and not check_all:
                continue
            try:
                values = np.array(parts[1:], dtype=np.float64)  # (dim,); several times faster than float() each
            except ValueError:
                bad = next(p for p in parts[1:] if not _is_float(p))
                raise WordVectorError(f"{name} line {line_no}: {bad[:30]!r} is not a number.") from None
            if not np.isfinite(values).all():
                raise WordVectorError(f"{name} line {line_no} holds inf or NaN.")
            if keep:
                vectors.setdefault(token, torch.from_numpy(values.astype(np.float32)))
    if dim is None or rows == 0:
        raise WordVectorError(f"{name} holds no vectors.")
    if declared is not None and declared != rows:
        raise WordVectorError(f"{name}'s header promises {declared:,} vectors but it holds {rows:,}.")
    return vectors, dim, rows


def describe_word_vectors(path: str | Path) -> dict[str, int]:
    """{"count", "dim"} of a whole file, every value checked (as an upload is registered). Raises WordVectorError."""
    _, dim, rows = _read(Path(path), set(), True, MAX_ROWS, MAX_LINE_BYTES)
    return {"count": rows, "dim": dim}


def _check_dim(dim: int, name: str, line_no: int) -> None:
    if not 1 <= dim <= MAX_DIM:
        raise WordVectorError(f"{name} line {line_no}: vectors of {dim} values; 1 to {MAX_DIM} are accepted.")


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
