"""Where a run writes files (output directory, checkpoints, export, teacher cache): clear errors when it cannot.

A full disk surfaces as OSError(ENOSPC) from Python, as "RuntimeError: [enforce fail at
inline_container.cc] unexpected pos ..." from torch.save and as an IoError string from
safetensors. `writing(path, what)` turns each of those, and permission/read-only errors, into a
StorageError that names the path, the free space and what to do; `check_writable` finds the same
problems before any work is done.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distill_core.errors import StorageError

log = logging.getLogger(__name__)
MIN_FREE_BYTES = 1 << 20  # below this even a small checkpoint cannot be written
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM}
_READ_ONLY = {errno.EROFS}
# How libraries other than Python's own I/O report the same failures in their messages.
_FULL_MARKERS = ("inline_container", "No space left", "StorageFull", "os error 28", "code: 28")
_DENIED_MARKERS = ("Permission denied", "PermissionDenied", "os error 13")
_READ_ONLY_MARKERS = ("Read-only file system", "ReadOnlyFilesystem", "os error 30")


def free_space(path: str | Path) -> tuple[int, int] | None:
    """(free, total) bytes of the filesystem holding `path` (or its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        usage = shutil.disk_usage(p)
    except OSError:
        return None
    return usage.free, usage.total


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _kind(exc: BaseException) -> str | None:
    """'full', 'denied', 'read-only' or None (not a storage failure)."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and code is not None:
        return "full" if code in _FULL else "denied" if code in _DENIED else "read-only" if code in _READ_ONLY else None
    text = str(exc)
    for kind, markers in (("full", _FULL_MARKERS), ("denied", _DENIED_MARKERS), ("read-only", _READ_ONLY_MARKERS)):
        if any(m in text for m in markers):
            return kind
    return None


def storage_error(path: str | Path, what: str, kind: str, detail: str = "") -> StorageError:
    """The StorageError for `kind` at `path`: what happened, the free space, what to do."""
    space = free_space(path)
    free = f"{_size(space[0])} free of {_size(space[1])}" if space else "free space unknown"
    if kind == "full":
        problem = f"the disk is full ({free})"
        todo = "Free space on that disk, or give the run an output directory on a disk with room, then run it again."
    elif kind == "denied":
        problem = f"permission denied for user id {os.getuid()} ({free})"
        todo = "Make the directory writable for that user, or give the run another output directory."
    else:
        problem = f"the filesystem is read-only ({free})"
        todo = "Mount it read-write, or give the run an output directory on a writable disk."
    suffix = f" [{detail}]" if detail else ""
    return StorageError(f"Cannot write the {what} at {path}: {problem}. {todo}{suffix}")


@contextmanager
def writing(path: str | Path, what: str) -> Iterator[None]:
    """Turn a full-disk, permission or read-only failure inside the block into a StorageError."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:  # OSError, torch's RuntimeError, safetensors' SafetensorError (the OS error in its text)
        kind = _kind(exc)
        if kind is None:
            raise
        first_line = (str(exc).splitlines() or [""])[0][:200]
        raise storage_error(path, what, kind, f"{type(exc).__name__}: {first_line}") from exc


def check_writable(directory: str | Path, what: str) -> None:
    """Create `directory` and write a probe file there; raise StorageError when that fails or space is gone."""
    directory = Path(directory)
    with writing(directory, what):
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-probe-")
        try:
            os.write(fd, b"distillery")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    space = free_space(directory)
    if space is not None and space[0] < MIN_FREE_BYTES:
        raise storage_error(directory, what, "full")


class NewEntry:
    """An entry `root/key` of a cache, built in a private temp directory and renamed into place whole.

    Readers never see half an entry. Two processes building one entry at once are safe: the second
    rename fails, its copy is dropped and both read the first's. As a context manager it yields the
    temp directory and commits on a clean exit; a writer that spans calls uses `commit`/`discard`.
    """

    def __init__(self, root: str | Path, key: str, what: str):
        self.root, self.entry, self.what = Path(root), Path(root) / key, what
        with writing(root, what):
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{key[:8]}-"))

    def commit(self) -> Path:
        """Rename the temp directory to the entry (unless another process got there first); return the entry."""
        try:
            with writing(self.root, self.what):
                try:
                    os.rename(self.tmp, self.entry)
                except OSError:  # another process renamed its copy into place first: use theirs
                    log.info("The %s entry %s was built concurrently; using the first", self.what, self.entry)
        finally:
            self.discard()
        return self.entry

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
