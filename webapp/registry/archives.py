"""Unpack an uploaded .zip / .tar.gz of a save_pretrained() directory, treating it as hostile.

The archive is hostile until proven otherwise: the request body is capped while it streams
(`CappedUploadHandler` stops reading it at the cap), members may only be regular files and
directories with relative paths that stay inside the target, and the member count and unpacked
bytes are bounded (bytes are counted while copying, not taken from headers). tar's extension
headers (GNU long names 'L'/'K', pax 'x'/'g') are size-checked before tarfile reads their payload,
which it would otherwise read whole into memory; sparse members are refused. The web request only
stores the archive, in the owning team's upload folder (webapp/registry/archive_jobs.py,
`ownership.upload_dir`); a Celery task unpacks it with `unpack`.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from webapp.registry import upload_limits

FIELD = "archive"
MAX_MEMBERS = 1000
# tar extension headers: one payload (a long name or a pax record set), all of them together, and how
# many may precede one member (pax + long name + long link name is the most a real archive writes).
MAX_TAR_HEADER_BYTES = 64 * 1024
MAX_TAR_HEADERS_BYTES = 1024 * 1024
MAX_TAR_HEADER_CHAIN = 4
MAX_ZIP_DIRECTORY_BYTES = 16 * 1024 * 1024  # ZipFile reads the central directory whole
CHUNK = 1024 * 1024
ZIP_MAGIC, GZIP_MAGIC = b"PK\x03\x04", b"\x1f\x8b"


class ArchiveRefused(Exception):
    """The archive cannot become a checkpoint; `field` names the form field to blame."""

    def __init__(self, message: str, field: str = FIELD):
        super().__init__(message)
        self.message = message
        self.field = field


def max_upload_bytes() -> int:
    return settings.MAX_CHECKPOINT_UPLOAD_MB * 1024 * 1024


def max_unpacked_bytes() -> int:
    return settings.MAX_CHECKPOINT_UNPACKED_MB * 1024 * 1024


def too_large_message(size: int | None = None) -> str:
    got = f"The archive is {size / 2**20:,.0f} MB; t" if size else "T"
    return f"{got}he limit is {settings.MAX_CHECKPOINT_UPLOAD_MB:,} MB (DISTILLERY_MAX_CHECKPOINT_UPLOAD_MB)."


class CappedUploadHandler(upload_limits.CappedUploadHandler):
    """Stream an archive to a temp file; stop reading the body once it is over the checkpoint limit.

    Install before the body is read: `request.upload_handlers = [CappedUploadHandler(request)]`;
    `request.upload_too_large` then says whether the archive was refused.
    """

    def __init__(self, request=None):
        super().__init__(request, limit=max_upload_bytes())


def content_length_too_large(request) -> bool:
    """True when the declared body is over the limit (plus room for the other form fields)."""
    return upload_limits.declared_too_large(request, max_upload_bytes())


def safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or ArchiveRefused for absolute paths and `..`."""
    if "\x00" in name or "\\" in name:
        raise ArchiveRefused(f"The archive member {name[:100]!r} has a NUL or backslash in its name.")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise ArchiveRefused(f"The archive member {name[:100]!r} has an absolute path; only relative paths are allowed.")
    if ".." in path.parts:
        raise ArchiveRefused(f"The archive member {name[:100]!r} points outside the archive (“..”).")
    return path


class _Budget:
    """Counts members and unpacked bytes against the limits; reports progress after every chunk."""

    def __init__(self, progress: Callable[[], None] | None = None, limit: tuple[int, str] | None = None):
        self.members = 0
        self.bytes = 0
        self.progress = progress or (lambda: None)
        self.max_bytes, self.setting = limit or (max_unpacked_bytes(), "DISTILLERY_MAX_CHECKPOINT_UNPACKED_MB")

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise ArchiveRefused(f"The archive has more than {MAX_MEMBERS} members; a checkpoint has a handful.")

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise ArchiveRefused(f"The archive unpacks to more than {self.max_bytes // 2**20:,} MB ({self.setting}).")
        self.progress()


def _copy(source: IO[bytes], target: Path, budget: _Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        while chunk := source.read(CHUNK):
            budget.add(len(chunk))
            out.write(chunk)


def _zip_members(archive: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, PurePosixPath, bool]]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        path = safe_member_path(info.filename)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveRefused(f"The archive member {info.filename[:100]!r} is a link or a device; only regular "
                                 "files and directories are allowed.")
        yield info, path, info.is_dir()


def _unpack_zip(file: IO[bytes], target: Path, budget: _Budget) -> None:
    # ZipFile reads the whole central directory into memory: check its declared size first.
    end = zipfile._EndRecData(file)  # private but stable since Python 2; None when there is no end record
    file.seek(0)
    if end and end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
        raise ArchiveRefused(f"The archive has more than {MAX_MEMBERS} members; a checkpoint has a handful.")
    if end and end[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY_BYTES:
        raise ArchiveRefused(f"The archive's directory is over {MAX_ZIP_DIRECTORY_BYTES // 2**20} MB; a checkpoint's "
                             "is a few KB.")
    with zipfile.ZipFile(file) as archive:
        for info, path, is_dir in _zip_members(archive):
            budget.member()
            if is_dir:
                (target / path).mkdir(parents=True, exist_ok=True)
                continue
            with archive.open(info) as source:
                _copy(source, target / path, budget)


_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized extension headers before tarfile reads their payload.

    tarfile reads a GNU long name ('L'/'K') or a pax record set ('x'/'g') whole, while it
    iterates, before any member check could run: a 1 MB .tar.gz can declare a 1 GiB name.
    `_proc_member` is private but has dispatched on the header type since Python 2.
    """

    def _proc_member(self, archive):
        if self.type == tarfile.GNUTYPE_SPARSE:  # its extension blocks are read in an unbounded loop
            raise ArchiveRefused(f"The archive member {self.name[:100]!r} is a sparse file; only regular files "
                                 "and directories are allowed.")
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, *_PAX_TYPES):
            _check_extension_header(self, archive)
        else:
            archive.header_chain = 0
        return super()._proc_member(archive)


def _check_extension_header(info: tarfile.TarInfo, archive: _BoundedTarFile) -> None:
    what = "pax header" if info.type in _PAX_TYPES else "long-name header"
    if info.size > MAX_TAR_HEADER_BYTES:
        raise ArchiveRefused(f"The archive has a {what} of {info.size:,} bytes (at most {MAX_TAR_HEADER_BYTES:,}); "
                             "a member's name is a few hundred bytes.")
    archive.header_bytes += max(info.size, tarfile.BLOCKSIZE)
    archive.header_chain += 1
    if archive.header_bytes > MAX_TAR_HEADERS_BYTES or archive.header_chain > MAX_TAR_HEADER_CHAIN:
        raise ArchiveRefused(f"The archive has too many {what}s; archive the checkpoint with plain tar or zip.")


class _BoundedTarFile(tarfile.TarFile):
    """A TarFile reading its headers through _BoundedTarInfo, with the counters of their budget."""

    tarinfo = _BoundedTarInfo

    def __init__(self, *args, **kwargs):
        self.header_bytes = 0  # set before super().__init__, which reads the first header
        self.header_chain = 0
        super().__init__(*args, **kwargs)


def _unpack_tar(file: IO[bytes], target: Path, budget: _Budget) -> None:
    with _BoundedTarFile.open(fileobj=file, mode="r:gz") as archive:
        for member in archive:  # streaming: one header at a time
            budget.member()
            path = safe_member_path(member.name)
            if member.isdir():
                (target / path).mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = archive.extractfile(member)
                _copy(source, target / path, budget)
            else:
                raise ArchiveRefused(f"The archive member {member.name[:100]!r} is a link or a device; only "
                                     "regular files and directories are allowed.")


def unpack(file: IO[bytes], target: Path, progress: Callable[[], None] | None = None,
           limit: tuple[int, str] | None = None) -> None:
    """Unpack a zip or gzipped tar from `file` into the existing empty directory `target`.

    `progress` is called after every chunk written (it may read `file.tell()`). `limit` is (most
    unpacked bytes, the setting that sets it); by default the checkpoint one.
    """
    head = file.read(4)
    file.seek(0)
    budget = _Budget(progress, limit)
    try:
        if head.startswith(ZIP_MAGIC):
            _unpack_zip(file, target, budget)
        elif head.startswith(GZIP_MAGIC):
            _unpack_tar(file, target, budget)
        else:
            raise ArchiveRefused("This is not a .zip or .tar.gz archive.")
    except ArchiveRefused:
        raise
    except FileExistsError as exc:
        raise ArchiveRefused(f"The archive holds {Path(exc.filename).name!r} twice.") from None
    except NotImplementedError as exc:  # zipfile: a compression method it does not know
        raise ArchiveRefused(f"The archive uses an unsupported format: {str(exc)[:200]}.") from None
    except RuntimeError as exc:  # zipfile: an encrypted member (after NotImplementedError, its subclass)
        raise ArchiveRefused(f"The archive cannot be read: {str(exc)[:200]}.") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        raise ArchiveRefused(f"The archive is damaged or truncated ({type(exc).__name__}: {str(exc)[:200]}).") from None


def checkpoint_dir(unpacked: Path) -> Path:
    """Where config.json is: the archive's root, or its single top-level directory."""
    if (unpacked / "config.json").is_file():
        return unpacked
    entries = [p for p in unpacked.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "config.json").is_file():
        return entries[0]
    raise ArchiveRefused("The archive has no config.json at its top level (or in its single top-level "
                         "directory); archive the directory written by save_pretrained().")
