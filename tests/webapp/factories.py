"""Test data and small builders shared by the web tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import tarfile
import zipfile

from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint

LABELS = ["finance", "sports", "tech"]
TRAIN_ROWS = [
    ("stocks rally as banks report profits", "finance"),
    ("central bank cuts interest rates", "finance"),
    ("bond yields fall after the report", "finance"),
    ("market closes higher on earnings", "finance"),
    ("inflation slows for a third month", "finance"),
    ("currency weakens against the dollar", "finance"),
    ("home team wins the final match", "sports"),
    ("striker scores twice in derby", "sports"),
    ("coach praises the young players", "sports"),
    ("marathon record falls in the rain", "sports"),
    ("tennis star reaches the semifinal", "sports"),
    ("league announces the new season", "sports"),
    ("new phone ships with a faster chip", "tech"),
    ("startup releases an open source model", "tech"),
    ("laptop battery lasts all day", "tech"),
    ("update fixes a security flaw", "tech"),
    ("cloud provider opens a new region", "tech"),
    ("robot vacuum maps the whole house", "tech"),
]
DEV_ROWS = [
    ("shares slip before the holiday", "finance"),
    ("goalkeeper saves a late penalty", "sports"),
    ("chip maker unveils a new design", "tech"),
    ("bank raises its outlook", "finance"),
    ("team signs a new captain", "sports"),
    ("browser adds a privacy mode", "tech"),
]
PASSWORD = "correct horse battery staple"


def tsv(rows) -> str:
    return "".join(f"{text}\t{label}\n" for text, label in rows)


def add_points(experiment: Experiment, key: str, values_by_step: dict[int, float]) -> None:
    MetricPoint.objects.bulk_create(
        [MetricPoint(experiment=experiment, key=key, step=step, value=value) for step, value in values_by_step.items()])


def sample_results(labels=LABELS) -> dict:
    """A `results` JSON shaped like the worker's."""
    n = len(labels)

    def report(acc):
        return {
            "accuracy": acc, "macro_f1": acc - 0.02,
            "per_class": [{"label": label, "precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 10}
                          for label in labels],
            "confusion_matrix": [[8 if i == j else 1 for j in range(n)] for i in range(n)],
        }

    return {
        "labels": list(labels),
        "student": report(0.81),
        "teacher": report(0.86),
        "size": {
            "student": {"parameters": 1_200_000, "bytes": 4_800_000, "latency_ms_b1": 0.8, "latency_ms_b32": 2.5,
                        "throughput": 12800.0},
            "teacher": {"parameters": 102_000_000, "bytes": 409_000_000, "latency_ms_b1": 9.0,
                        "latency_ms_b32": 60.0, "throughput": 533.0},
            "compression": 85.0, "speedup": 24.0,
        },
        "best_dev": {"accuracy": 0.83, "macro_f1": 0.82, "epoch": 2},
        "export_dir": "/artifacts/experiments/1/student",
        "test_split": "test",
    }


def zip_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, target)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def run_on_commit():
    """Run the on-commit callbacks (task sends) that requests register inside the test's transaction."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)
