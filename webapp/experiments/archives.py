"""Register a teacher from an uploaded .zip / .tar.gz of a save_pretrained() directory.

The archive is hostile until proven otherwise: the request body is capped while it streams
(`CappedUploadHandler`), members may only be regular files and directories with relative
paths that stay inside the target, and the member count and unpacked bytes are bounded
(bytes are counted while copying, not taken from headers). Everything is unpacked into a
fresh directory in the owning team's upload folder (`ownership.upload_dir`), checked with
inspect_checkpoint, and the directory is removed on any failure, so nothing half-created remains.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.db import IntegrityError, transaction

from distill_core.errors import CheckpointError
from webapp.experiments import ownership
from webapp.experiments.models import Checkpoint

log = logging.getLogger(__name__)

FIELD = "archive"
MAX_MEMBERS = 1000
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


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Stream uploads to a temp file, dropping any file larger than the checkpoint limit.

    Install before the body is read: `request.upload_handlers = [CappedUploadHandler(request)]`.
    A dropped file is missing from request.FILES and `request.upload_too_large` is True.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0
        if request is not None:
            request.upload_too_large = False

    def new_file(self, *args, **kwargs):
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > max_upload_bytes():
            self.request.upload_too_large = True
            raise SkipFile()  # the parser closes (and so deletes) the partial temp file
        return super().receive_data_chunk(raw_data, start)


def content_length_too_large(request) -> bool:
    """True when the declared body is over the limit (plus room for the other form fields)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > max_upload_bytes() + 1024 * 1024


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
    """Counts members and unpacked bytes against the limits."""

    def __init__(self):
        self.members = 0
        self.bytes = 0

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise ArchiveRefused(f"The archive has more than {MAX_MEMBERS} members; a checkpoint has a handful.")

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > max_unpacked_bytes():
            raise ArchiveRefused(f"The archive unpacks to more than {settings.MAX_CHECKPOINT_UNPACKED_MB:,} MB "
                                 "(DISTILLERY_MAX_CHECKPOINT_UNPACKED_MB).")


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
    with zipfile.ZipFile(file) as archive:
        for info, path, is_dir in _zip_members(archive):
            budget.member()
            if is_dir:
                (target / path).mkdir(parents=True, exist_ok=True)
                continue
            with archive.open(info) as source:
                _copy(source, target / path, budget)


def _unpack_tar(file: IO[bytes], target: Path, budget: _Budget) -> None:
    with tarfile.open(fileobj=file, mode="r:gz") as archive:
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


def unpack(file: IO[bytes], target: Path) -> None:
    """Unpack a zip or gzipped tar from `file` into the existing empty directory `target`."""
    head = file.read(4)
    file.seek(0)
    budget = _Budget()
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


def register_archive(*, team, user, name: str, upload: UploadedFile) -> Checkpoint:
    """Unpack `upload` under <first checkpoint root>/<team-slug>/uploads/, inspect it, save the Checkpoint.

    Raises ArchiveRefused after removing everything it created.
    """
    from webapp.experiments.forms import inspect

    if upload.size is not None and upload.size > max_upload_bytes():
        raise ArchiveRefused(too_large_message(upload.size))
    try:
        base = ownership.upload_dir(team)
    except ownership.PathRefused as exc:
        raise ArchiveRefused(exc.message) from None
    base.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:50] or "checkpoint"
    directory = base / f"{slug}-{secrets.token_hex(6)}"
    directory.mkdir()
    try:
        upload.seek(0)
        unpack(upload, directory)
        path = checkpoint_dir(directory)
        try:
            info = inspect(path)
        except CheckpointError as exc:
            raise ArchiveRefused(exc.message.replace(str(directory), "the archive")) from None
        try:
            with transaction.atomic():
                checkpoint = Checkpoint.objects.create(team=team, name=name, path=str(path), info=info,
                                                       created_by=user)
        except IntegrityError:
            raise ArchiveRefused(f"{team} already has a checkpoint called {name!r}.", "name") from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("Registered uploaded checkpoint %s (%s) for team %s in %s", checkpoint.pk, name, team.pk, path)
    return checkpoint
