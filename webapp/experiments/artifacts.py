"""A finished experiment's exported student: where it is, streaming it as a zip, predicting with it.

Loaded models stay in a small in-process LRU so "Try it" answers in milliseconds after the
first call; distill_core (and torch) are imported only when a model is first needed.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from distill_core import hub
from distill_core.errors import CheckpointError
from webapp.experiments.models import Experiment
from webapp.registry import ownership
from webapp.registry.models import Checkpoint

MAX_TEXTS = 20
MAX_TEXT_LENGTH = 1000
CACHE_SIZE = 4
CHUNK = 1 << 20


class Unavailable(Exception):
    """The experiment has no usable export; the message says why (shown to the user)."""


def export_dir(experiment: Experiment) -> Path:
    """The experiment's export directory, if it SUCCEEDED and the directory lies inside ARTIFACT_ROOT."""
    if experiment.status != Experiment.Status.SUCCEEDED:
        raise Unavailable(f"Only a finished run has a student to use; this one is {experiment.status.lower()}.")
    raw = (experiment.results or {}).get("export_dir") if isinstance(experiment.results, dict) else None
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise Unavailable("This run did not export its student.")
    path = Path(raw).resolve()
    if not path.is_relative_to(Path(settings.ARTIFACT_ROOT).resolve()):
        raise Unavailable("The exported student lies outside the artifact directory, so it is not served.")
    if not path.is_dir():
        raise Unavailable("The exported student is no longer on disk.")
    return path


def teacher_dir(experiment: Experiment) -> Path:
    """The teacher checkpoint named in the config, if it lies inside a CHECKPOINT_ROOT and the team may use it."""
    config = experiment.config if isinstance(experiment.config, dict) else {}
    raw = (config.get("teacher") or {}).get("path") if isinstance(config.get("teacher"), dict) else None
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise Unavailable("The run's config names no teacher checkpoint.")
    if hub.is_hub(raw):
        return _hub_snapshot(experiment, raw)
    path = Path(raw).resolve()
    if not any(path.is_relative_to(Path(root).resolve()) for root in settings.CHECKPOINT_ROOTS):
        raise Unavailable("The teacher checkpoint lies outside the allowed checkpoint directories.")
    if not ownership.may_use(experiment.team, path):
        raise Unavailable("The teacher checkpoint belongs to another team, so it is not run here.")
    if not path.is_dir():
        raise Unavailable("The teacher checkpoint is no longer on disk.")
    return path


def _hub_snapshot(experiment: Experiment, raw: str) -> Path:
    """The cached snapshot a run of the team resolved `raw` to; never downloaded inside a request."""
    try:
        ref = hub.parse(raw)
    except CheckpointError:
        raise Unavailable("The run's config names no teacher checkpoint.") from None
    commit = (Checkpoint.objects.filter(team=experiment.team_id, hub_id=ref.repo_id, hub_revision=ref.revision or "")
              .exclude(hub_commit="").values_list("hub_commit", flat=True).first())
    path = hub.snapshot_dir(settings.HF_CACHE, ref.repo_id, commit) if commit else None
    if path is None or not path.is_dir():
        raise Unavailable(f"The teacher {ref.spec()} is not in the workers' model cache yet; a run downloads it.")
    return path


# --- zip download ---------------------------------------------------------------------------

class _Chunks:
    """A write-only file object for ZipFile: bytes pile up until the generator hands them out."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def files_of(directory: Path) -> list[Path]:
    """Regular files under `directory`, sorted; symbolic links are left out (they could lead anywhere)."""
    found = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            path = Path(root) / name
            if not path.is_symlink() and path.is_file():
                found.append(path)
    return found


def zip_stream(directory: Path, prefix: str) -> Iterator[bytes]:
    """The zip of `directory` in pieces of about a megabyte, never the whole archive in memory."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in files_of(directory):
            arcname = f"{prefix}/{path.relative_to(directory).as_posix()}"
            with open(path, "rb") as source, archive.open(arcname, "w", force_zip64=True) as target:
                while block := source.read(CHUNK):
                    target.write(block)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data


# --- predictions ----------------------------------------------------------------------------

class ModelCache:
    """A tiny thread-safe LRU of loaded models keyed by (kind, path, modification time)."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()  # outside the lock: loading a teacher takes a while
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


MODELS = ModelCache()


def _stamp(path: Path) -> float:
    return max((p.stat().st_mtime for p in path.iterdir()), default=0.0)


def _load_teacher(path: Path):
    from distill_core.teachers import inspect_checkpoint, load_teacher

    model, tokenizer = load_teacher(path)
    return model, tokenizer, [str(label) for label in inspect_checkpoint(path)["labels"]]


def clean_texts(raw: Any) -> list[str]:
    """Texts from a list or from one string with a text per line; blank lines are dropped."""
    if isinstance(raw, str):
        raw = raw.splitlines()
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise ValueError("Send the texts as a list of strings, or as one text per line.")
    texts = [t.strip() for t in raw if t.strip()]
    if not texts:
        raise ValueError("Type at least one text, one per line.")
    if len(texts) > MAX_TEXTS:
        raise ValueError(f"At most {MAX_TEXTS} texts at a time (got {len(texts)}).")
    if any("\x00" in t for t in texts):
        raise ValueError("The texts cannot contain NUL characters.")
    longest = max(len(t) for t in texts)
    if longest > MAX_TEXT_LENGTH:
        raise ValueError(f"Each text has at most {MAX_TEXT_LENGTH:,} characters (one has {longest:,}).")
    return texts


def predict(experiment: Experiment, texts: list[str]) -> dict[str, Any]:
    """Student and teacher probabilities for each text, labels in the run's order."""
    import torch

    from distill_core.export import load_student
    from distill_core.teachers import label_order, teacher_logits

    student_path, teacher_path = export_dir(experiment), teacher_dir(experiment)
    student = MODELS.get(("student", str(student_path), _stamp(student_path)), lambda: load_student(student_path))
    model, tokenizer, teacher_labels = MODELS.get(("teacher", str(teacher_path), _stamp(teacher_path)),
                                                  lambda: _load_teacher(teacher_path))
    labels = list(student.labels)
    max_length = int((experiment.config.get("data") or {}).get("max_length") or student.max_length)

    student_probs = student.probabilities(texts)  # (N, C)
    logits = teacher_logits(model, tokenizer, texts, None, max_length)  # (N, C)
    if logits.shape[1] != len(labels):
        raise Unavailable(f"The teacher predicts {logits.shape[1]} classes but the student {len(labels)}.")
    order = label_order(teacher_labels, labels)
    if order is not None:
        logits = logits[:, order]
    teacher_probs = torch.softmax(logits, dim=-1)  # (N, C)

    def row(probs: torch.Tensor) -> dict[str, Any]:
        values = [round(float(p), 4) for p in probs]
        return {"label": labels[int(probs.argmax())], "probabilities": values}

    predictions = []
    for text, s, t in zip(texts, student_probs, teacher_probs, strict=True):
        s_row, t_row = row(s), row(t)
        predictions.append({"text": text, "student": s_row, "teacher": t_row,
                            "agree": s_row["label"] == t_row["label"]})
    return {"labels": labels, "predictions": predictions}
