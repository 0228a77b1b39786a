"""Every file a run wrote: its export and checkpoints, its full log, the teacher cache entries it used.

Files are named by a download path "<area>/<relative path>" that never leaves its area:

- ``run/...``            the run's directory, ARTIFACT_ROOT/experiments/<pk>/ (student export, checkpoint, run.log)
- ``teacher-cache/...``  an entry of the shared teacher cache the run read or wrote (named in its log)

Symbolic links are never listed or served (they could lead anywhere); a path with ".." or one that
resolves outside its area is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from webapp.experiments.artifacts import files_of
from webapp.experiments.models import Experiment

LOG_NAME = "run.log"
# What distill_core.teacher_cache logs when a run reads or fills an entry.
CACHE_LINE = re.compile(r"Teacher cache (?:hit|miss) (\S+?)(?::|$|\s)", re.MULTILINE)


@dataclass(frozen=True)
class RunFile:
    area: str  # "run" or "teacher-cache"
    name: str  # the path inside the area, with forward slashes
    size: int
    kind: str  # what it is, for the page: "export", "checkpoint", "log", "teacher cache", "file"

    @property
    def path(self) -> str:
        return f"{self.area}/{self.name}"


def run_dir(experiment: Experiment) -> Path:
    """ARTIFACT_ROOT/experiments/<pk>: everything a run of the dashboard writes (configs.output_dir is below it)."""
    return Path(settings.ARTIFACT_ROOT).resolve() / "experiments" / str(experiment.pk)


def log_path(experiment_id: int) -> Path:
    """Where the worker keeps the run's full log (workers/runlog.py writes it)."""
    return Path(settings.ARTIFACT_ROOT).resolve() / "experiments" / str(experiment_id) / LOG_NAME


def cache_root() -> Path:
    return (Path(settings.ARTIFACT_ROOT) / "teacher-cache").resolve()


def _kind(name: str) -> str:
    if name == LOG_NAME:
        return "log"
    if "checkpoint" in name or name.endswith((".ckpt", ".pt.tmp")):
        return "checkpoint"
    if name.startswith("student/"):
        return "export"
    return "file"


def cache_entries(experiment: Experiment) -> list[Path]:
    """The teacher cache entries the run's log names, in order, that still exist inside the cache."""
    log = log_path(experiment.pk)
    if not log.is_file():
        return []
    text = log.read_text(encoding="utf-8", errors="replace")
    root, found = cache_root(), []
    for raw in CACHE_LINE.findall(text):
        path = Path(raw)
        if path.name and path.parent.resolve() == root and not path.is_symlink() and path.is_dir():
            if path not in found:
                found.append(path)
    return found


def list_files(experiment: Experiment) -> list[RunFile]:
    """Every file of the run: its directory's files first (sorted), then the teacher cache entries' files."""
    out: list[RunFile] = []
    base = run_dir(experiment)
    if base.is_dir() and not base.is_symlink():
        for path in files_of(base):
            name = path.relative_to(base).as_posix()
            out.append(RunFile("run", name, path.stat().st_size, _kind(name)))
    root = cache_root()
    for entry in cache_entries(experiment):
        for path in files_of(entry):
            out.append(RunFile("teacher-cache", path.relative_to(root).as_posix(), path.stat().st_size,
                               "teacher cache"))
    return out


def resolve(experiment: Experiment, download: str) -> Path | None:
    """The file behind a download path from `list_files`, or None when it is not one of the run's files."""
    if "\x00" in download or "\\" in download:
        return None
    area, _, name = download.partition("/")
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts):
        return None
    if area == "run":
        base = run_dir(experiment)
    elif area == "teacher-cache":
        base = cache_root()
        if Path(base / parts[0]) not in cache_entries(experiment):
            return None
    else:
        return None
    path = base.joinpath(*parts)
    # No link anywhere on the way: each component is checked, not only the end.
    probe = base
    for part in parts:
        probe = probe / part
        if probe.is_symlink():
            return None
    if not path.resolve().is_relative_to(base.resolve()) or not path.is_file():
        return None
    return path
