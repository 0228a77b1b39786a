"""A tiny random teacher and a THUCNews slice, built once per session in a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import demo_labels, write_demo_slice


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def thucnews_slice(tmp_path_factory) -> dict[str, Path]:
    return write_demo_slice(tmp_path_factory.mktemp("thucnews"), train=200, dev=60, test=60)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, thucnews_slice) -> Path:
    from distill_core.testing import make_tiny_teacher

    text = "".join(p.read_text(encoding="utf-8") for p in thucnews_slice.values())
    return make_tiny_teacher(tmp_path_factory.mktemp("teachers") / "tiny-bert", demo_labels(), text,
                             layers=2, hidden=32)


@pytest.fixture
def make_config(thucnews_slice, tiny_teacher, tmp_path):
    """An ExperimentConfig dict for the slice and the tiny teacher; keyword overrides by section."""

    def make(**sections) -> dict:
        raw = {
            "name": "tiny",
            "seed": 7,
            "data": {"train": str(thucnews_slice["train"]), "dev": str(thucnews_slice["dev"]),
                     "test": str(thucnews_slice["test"]), "labels": demo_labels(), "max_length": 24},
            "teacher": {"path": str(tiny_teacher)},
            "student": {"type": "textcnn", "embedding_dim": 16, "options": {"num_filters": 8}},
            "kd": {"temperature": 2.0, "alpha": 0.8},
            "train": {"epochs": 2, "batch_size": 32, "learning_rate": 0.005, "log_every": 1},
            "output_dir": str(tmp_path / "export"),
        }
        for section, values in sections.items():
            raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
        return raw

    return make


class ListSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def emit(self, kind: str, payload: dict) -> None:
        self.events.append((kind, payload))

    def of(self, kind: str) -> list[dict]:
        return [p for k, p in self.events if k == kind]


class CancelAt(ListSink):
    """A sink whose `should_cancel` turns true at training step `step` (teacher-pass polls do not count)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.calls = step, 0

    def should_cancel(self) -> bool:
        if self.of("start"):
            self.calls += 1
        return self.calls == self.step
