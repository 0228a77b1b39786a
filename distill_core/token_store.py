"""Tokenised splits on disk, read batch by batch through memory maps: a run's RSS does not grow with its data.

An entry is a directory `<root>/<key>/`:
    ids.bin      int32, every example's student ids end to end (no padding)
    offsets.bin  int64 (N + 1,), example i is ids[offsets[i]:offsets[i + 1]]
    labels.bin   int32 (N,) class indices, or uint8 (N, C) multi-hot rows (multi-label)
    meta.json    {"version", "rows", "tokens", "pad_id", "num_labels", "multi_label", ...}, written last
Entries are built in a private temp directory and renamed into place (storage.NewEntry), like the
teacher cache, so two workers building the same key are safe. Files are written with plain
writes and read through `mmap`; `Mapped.release()` drops the pages a process has touched from its
mapping (they stay in the page cache), which StoredSplit does every RELEASE_ROWS rows read, so random
access over a split larger than memory leaves neither the heap nor the RSS holding it.

Per-row bookkeeping that remains in memory: the epoch's permutation (8 bytes a row, as before) and,
when asked for, `lengths()` (4 bytes a row) for a length-bucketing sampler.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core.storage import NewEntry, writing

VERSION = 1
RELEASE_ROWS = 512  # rows gathered between dropping touched pages (each row touches up to ~4 pages)


class Mapped:
    """A read-only numpy view of a file (or part of one) through mmap, whose pages can be given back."""

    def __init__(self, path: Path, dtype: Any, shape: tuple[int, ...], offset: int = 0):
        count = int(np.prod(shape))
        self.mm = None
        if count == 0:
            self.array = np.zeros(shape, dtype=dtype)
            return
        with open(path, "rb") as fh:
            self.mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.array = np.frombuffer(self.mm, dtype=dtype, count=count, offset=offset).reshape(shape)

    @classmethod
    def npy(cls, path: Path) -> Mapped:
        """A `.npy` file (np.save's format), mapped."""
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            assert not fortran, path
            offset = fh.tell()
        return cls(path, dtype, shape, offset)

    def release(self) -> None:
        if self.mm is not None:
            self.mm.madvise(mmap.MADV_DONTNEED)


class StoreWriter:
    """Append tokenised examples chunk by chunk; `finish()` renames the entry into place."""

    def __init__(self, root: Path, key: str, pad_id: int, num_labels: int, multi_label: bool):
        self.root = root
        self.meta = {"version": VERSION, "rows": 0, "tokens": 0, "pad_id": int(pad_id), "num_labels": num_labels,
                     "multi_label": multi_label}
        self.building = NewEntry(root, key, "token store")
        self.files = {name: open(self.building.tmp / f"{name}.bin", "wb") for name in ("ids", "offsets", "labels")}
        self.files["offsets"].write(np.zeros(1, dtype=np.int64).tobytes())

    def append(self, seqs: Iterable[list[int]], labels: list) -> None:
        seqs = list(seqs)
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((t for s in seqs for t in s), dtype=np.int32, count=int(lengths.sum()))
        offsets = self.meta["tokens"] + np.cumsum(lengths)
        if self.meta["multi_label"]:
            y = np.zeros((len(labels), self.meta["num_labels"]), dtype=np.uint8)
            for i, row in enumerate(labels):
                if isinstance(row, list) and row:
                    y[i, row] = 1
        else:
            y = np.asarray(labels, dtype=np.int32)
        with writing(self.root, "token store"):
            self.files["ids"].write(flat.tobytes())
            self.files["offsets"].write(offsets.astype(np.int64).tobytes())
            self.files["labels"].write(y.tobytes())
        self.meta["rows"] += len(seqs)
        self.meta["tokens"] += int(lengths.sum())

    def finish(self, **extra: Any) -> Path:
        with writing(self.root, "token store"), self.building as tmp:
            for fh in self.files.values():
                fh.close()
            (tmp / "meta.json").write_text(json.dumps({**self.meta, **extra}))
        return self.building.entry

    def abort(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.building.discard()


def lookup(root: Path, key: str) -> Path | None:
    entry = root / key
    return entry if (entry / "meta.json").is_file() else None


class TokenStore:
    """A finished entry, mapped: offsets, ids and labels of N examples."""

    def __init__(self, entry: Path):
        self.entry = entry
        self.meta = json.loads((entry / "meta.json").read_text())
        n = self.meta["rows"]
        self.rows, self.pad_id = n, self.meta["pad_id"]
        self.ids = Mapped(entry / "ids.bin", np.int32, (self.meta["tokens"],))
        self.offsets = Mapped(entry / "offsets.bin", np.int64, (n + 1,))
        shape = (n, self.meta["num_labels"]) if self.meta["multi_label"] else (n,)
        self.labels = Mapped(entry / "labels.bin", np.uint8 if self.meta["multi_label"] else np.int32, shape)

    def release(self) -> None:
        for mapped in (self.ids, self.offsets, self.labels):
            mapped.release()

    def lengths(self, chunk: int = 1 << 20) -> np.ndarray:
        """(N,) int32 token count of every example (at least 1, as the loop counts them), read chunk by chunk."""
        out = np.empty(self.rows, dtype=np.int32)
        offsets = self.offsets.array
        for start in range(0, self.rows, chunk):
            end = min(start + chunk, self.rows)
            out[start:end] = np.maximum(1, np.diff(offsets[start: end + 1]))
        self.offsets.release()
        return out

    def gather(self, index: np.ndarray, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (b, L_b) long right-padded with pad_id, lengths (b,) long >= 1) of the examples in `index`;
        L_b is their longest, or `width` (a data-parallel rank pads its slice to the global batch's width)."""
        starts = self.offsets.array[index]
        counts = self.offsets.array[index + 1] - starts  # (b,)
        lengths = np.maximum(1, counts)
        width = width or (int(lengths.max()) if len(index) else 1)
        columns = np.arange(width)
        inside = columns[None, :] < counts[:, None]  # (b, L_b)
        ids = np.full((len(index), width), self.pad_id, dtype=np.int64)
        ids[inside] = self.ids.array[(starts[:, None] + columns[None, :])[inside]]
        return torch.from_numpy(ids), torch.from_numpy(lengths.astype(np.int64))

    def label_rows(self, index: np.ndarray) -> torch.Tensor:
        """(b,) long class indices, or (b, C) float multi-hot."""
        y = self.labels.array[index]
        return torch.from_numpy(y.astype(np.float32)) if self.meta["multi_label"] else torch.from_numpy(
            y.astype(np.int64))


class StoredSplit:
    """A split for the training loop, read batch by batch: student ids from a TokenStore, gold labels, and
    the teachers' weighted mean logits from their memory-mapped cache entries (`teachers`: (logits (N, C)
    Mapped, column order or None, weight share)). The same tensors as an in-memory encoding.Encoded."""

    def __init__(self, store: TokenStore, teachers: list[tuple[Mapped, list[int] | None, float]] | None):
        self.store, self.teachers = store, teachers
        self.rows_read = 0

    def __len__(self) -> int:
        return self.store.rows

    def lengths(self) -> np.ndarray:
        """(N,) int32 example lengths, for a length-bucketing sampler."""
        return self.store.lengths()

    def teacher_rows(self, index: np.ndarray) -> torch.Tensor | None:
        """(b, C) float32 weighted mean of the teachers' logits, summed in ensemble order (teacher first)."""
        if not self.teachers:
            return None
        mean = None
        for logits, order, share in self.teachers:
            rows = torch.from_numpy(np.array(logits.array[index], dtype=np.float32))  # (b, C)
            if order is not None:
                rows = rows[:, order]
            mean = rows * share + (0 if mean is None else mean)
        return mean

    def label_rows(self, index: np.ndarray) -> torch.Tensor:
        """(b,) long gold class indices, or (b, C) float multi-hot (augment_store.TeacherLabelled: the teacher's)."""
        return self.store.label_rows(index)

    def release(self) -> None:
        self.store.release()
        for logits, _, _ in self.teachers or ():
            logits.release()

    def batch(self, index: torch.Tensor, device: torch.device,
              width: int | None = None) -> tuple[torch.Tensor | None, ...]:
        rows = index.numpy().astype(np.int64)
        ids, lengths = self.store.gather(rows, width)
        teacher = self.teacher_rows(rows)
        self.rows_read += len(rows)
        if self.rows_read >= RELEASE_ROWS:  # random rows touch a page each: give them back
            self.rows_read = 0
            self.release()
        return (ids.to(device), lengths.to(device), self.label_rows(rows).to(device),
                None if teacher is None else teacher.to(device))

    @property
    def labels(self) -> torch.Tensor:
        """Every gold label in memory (for dev/test reports)."""
        return self.label_rows(np.arange(len(self)))

    @property
    def teacher(self) -> torch.Tensor | None:
        """Every example's teacher logits in memory (for the teacher's test report)."""
        return self.teacher_rows(np.arange(len(self)))
