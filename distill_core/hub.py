"""Teachers by Hugging Face Hub id: `hub:org/name@revision` resolved to a snapshot in a shared cache.

A teacher path (and a fine-tune base, and `init_from_teacher`) may be a Hub reference instead of a
directory. `resolve` downloads the snapshot once into a cache shared by every worker (the standard
Hub cache layout, `models--org--name/snapshots/<commit>/`), under a file lock so that concurrent
workers wait for the first one instead of downloading the same files side by side, and honours
`HF_HUB_OFFLINE` (then only the cache is read). `localise` swaps every Hub reference in a config for
its local snapshot, so the rest of the library only ever sees directories.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distill_core.errors import CheckpointError

if TYPE_CHECKING:
    from distill_core.config import ExperimentConfig

__all__ = ["PREFIX", "CACHE_ENV", "HubRef", "Resolved", "is_hub", "parse", "resolve", "localise", "default_cache_dir",
           "snapshot_dir"]

log = logging.getLogger(__name__)

PREFIX = "hub:"
CACHE_ENV = "DISTILLERY_HF_CACHE"
FIELD = "teacher.path"
LOCK_TIMEOUT_S = 6 * 3600  # a large model on a slow link; a dead holder's flock is released by the kernel
# Weights in formats transformers' PyTorch loader never reads: skipping them keeps a download to what is used.
IGNORE_PATTERNS = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite", "*.mlmodel", "onnx/*", "coreml/*",
                   "openvino/*", "tf_model*", "flax_model*", "rust_model*"]
_REVISION = re.compile(r"[A-Za-z0-9._/-]{1,200}\Z")


@dataclass(frozen=True)
class HubRef:
    """A Hub model id and an optional revision (branch, tag or commit); None means the default branch."""

    repo_id: str
    revision: str | None = None

    def spec(self) -> str:
        """The config form, `hub:org/name` or `hub:org/name@revision`."""
        return PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class Resolved:
    """Where a Hub reference lies on disk, and the commit it resolved to."""

    ref: HubRef
    path: Path
    commit: str


def is_hub(path: str | None) -> bool:
    return bool(path) and str(path).startswith(PREFIX)


def parse(text: str, field: str = FIELD) -> HubRef:
    """`org/name`, `org/name@rev`, with or without `hub:`, as a HubRef; CheckpointError naming `field` otherwise."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    raw = text.strip()
    body = raw[len(PREFIX):] if raw.startswith(PREFIX) else raw
    repo_id, at, revision = body.partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise CheckpointError(f"{raw[:120]!r} is not a Hugging Face model id; write it as name or org/name, "
                              "optionally with @revision (a branch, tag or commit), e.g. org/name@main.",
                              field=field) from None
    if at and not _REVISION.match(revision):
        raise CheckpointError(f"{revision[:60]!r} is not a revision: give a branch, tag or commit after '@'.",
                              field=field)
    return HubRef(repo_id, revision or None)


def default_cache_dir() -> Path:
    """`DISTILLERY_HF_CACHE`, else the Hugging Face cache of this account (HF_HUB_CACHE)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def storage_dir(cache_dir: str | Path, repo_id: str) -> Path:
    """A model's folder in the Hub cache layout: `models--org--name`."""
    return Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"


def snapshot_dir(cache_dir: str | Path, repo_id: str, commit: str) -> Path:
    return storage_dir(cache_dir, repo_id) / "snapshots" / commit


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as set now; huggingface_hub reads it only once, at import."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def resolve(ref: HubRef, cache_dir: str | Path | None = None, field: str = FIELD) -> Resolved:
    """Download `ref` into `cache_dir` once (or find it there) and return its snapshot and commit.

    Holds a file lock per repository while it works: a second process asking for the same model
    waits, then finds the files in the cache. Offline (HF_HUB_OFFLINE) only the cache is read.
    Raises CheckpointError with a message the user can act on (unknown id or revision, not cached
    while offline, the Hub unreachable).
    """
    from filelock import FileLock
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    locks = cache / ".distillery-locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = ref.spec()
    is_offline = offline()
    lock = FileLock(str(locks / f"{storage_dir(cache, ref.repo_id).name}.lock"))
    _acquire(lock, name, cache, field)
    log.info("Resolving %s in %s%s", name, cache, " (offline: the cache only)" if is_offline else "")
    try:
        # HF_ENDPOINT is read now, not at import, like HF_HUB_OFFLINE (a mirror, or a test's server).
        path = snapshot_download(ref.repo_id, revision=ref.revision, cache_dir=cache,
                                 local_files_only=is_offline, ignore_patterns=IGNORE_PATTERNS,
                                 endpoint=os.environ.get("HF_ENDPOINT") or None)
    except GatedRepoError:
        raise CheckpointError(f"{name}: the model is gated on the Hub; accept its terms and give the workers a "
                              "token (HF_TOKEN), or register a local copy.", field=field) from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{name}: no such model on the Hugging Face Hub (or it is private); check the id.",
                              field=field) from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{name}: the model has no revision {ref.revision!r}; give a branch, tag or "
                              "commit it has.", field=field) from None
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if is_offline else "the Hub could not be reached"
        raise CheckpointError(f"{name} is not in the model cache ({cache}) and {why}; download it once with "
                              "network access, or register a local copy.", field=field) from None
    except HfHubHTTPError as exc:
        raise CheckpointError(f"{name}: the Hub answered {_first_line(exc)}", field=field) from None
    finally:
        lock.release()
    snapshot = Path(path)
    log.info("Resolved %s to commit %s (%s)", name, snapshot.name, snapshot)
    return Resolved(ref, snapshot, snapshot.name)


def _acquire(lock, name: str, cache: Path, field: str) -> None:
    """Take the model's download lock, saying so when another process holds it (a large model takes a while)."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
        return
    except Timeout:
        log.info("Waiting for another process that is downloading %s into %s", name, cache)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_S)
    except Timeout:
        raise CheckpointError(f"{name}: another process has held the download lock ({lock.lock_file}) for "
                              f"{LOCK_TIMEOUT_S // 3600} h; retry the run.", field=field) from None


def localise(config: ExperimentConfig, cache_dir: str | Path | None = None
             ) -> tuple[ExperimentConfig, dict[str, Resolved]]:
    """A copy of `config` whose Hub references are local snapshots, and what each reference resolved to.

    Covers the teacher (or fine-tune base), the ensemble members and `student.options.init_from_teacher`.
    A config without Hub references comes back as it is.
    """
    places = [("teacher.path", config.teacher.path)]
    places += [(f"teacher.ensemble.{i}.path", m.get("path")) for i, m in enumerate(config.teacher.ensemble)]
    places.append(("student.options.init_from_teacher", config.student.options.get("init_from_teacher")))
    if not any(is_hub(value) for _, value in places):
        return config, {}
    config = copy.deepcopy(config)
    resolved: dict[str, Resolved] = {}
    for field, value in places:
        if not is_hub(value):
            continue
        if value not in resolved:
            resolved[value] = resolve(parse(value, field), cache_dir, field)
        local = str(resolved[value].path)
        if field == "teacher.path":
            config.teacher.path = local
        elif field.startswith("teacher.ensemble."):
            config.teacher.ensemble[int(field.split(".")[2])]["path"] = local
        else:
            config.student.options["init_from_teacher"] = local
    return config, resolved


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
