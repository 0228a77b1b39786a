"""`manage.py demo_setup` puts the demo teacher in the demo team's folder (<root>/demo/).

A teacher found there (or where older versions put it) is registered at once; otherwise the
command saves an untrained base and queues the run that trains it, first, with the demo
distillation waiting for that run. Nothing is trained inside the command.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import demo_labels
from webapp.experiments.management.commands.demo_setup import INITIAL_NAME, TEACHER_NAME
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.registry import ownership
from webapp.registry.models import Checkpoint

S = Experiment.Status


@pytest.fixture
def root(settings, tmp_path) -> Path:
    settings.CHECKPOINT_ROOTS = [tmp_path / "teachers"]
    return tmp_path / "teachers"


def tiny_demo_teacher(path: Path) -> None:
    from distill_core.testing import make_tiny_teacher

    make_tiny_teacher(path, demo_labels(), "央行宣布降准体育科技股市", layers=1, hidden=16)


def setup_demo() -> Checkpoint:
    call_command("demo_setup", "--no-experiment", stdout=io.StringIO())
    return Checkpoint.objects.get(name=TEACHER_NAME)


def test_the_demo_teacher_is_registered_from_the_demo_teams_folder(db, root):
    tiny_demo_teacher(root / "demo" / TEACHER_NAME)
    checkpoint = setup_demo()
    assert checkpoint.team.slug == "demo" and checkpoint.path == str(root / "demo" / TEACHER_NAME)
    assert ownership.may_use(checkpoint.team, Path(checkpoint.path))


def test_a_teacher_trained_by_an_older_demo_setup_is_moved_into_the_folder(db, root):
    tiny_demo_teacher(root / TEACHER_NAME)
    checkpoint = setup_demo()
    assert checkpoint.path == str(root / "demo" / TEACHER_NAME) and not (root / TEACHER_NAME).exists()
    assert checkpoint.info["num_labels"] == len(demo_labels())


def test_running_it_again_keeps_the_existing_row(db, root):
    tiny_demo_teacher(root / "demo" / TEACHER_NAME)
    first = setup_demo()
    assert setup_demo().pk == first.pk and Checkpoint.objects.count() == 1


def setup_demo_with_runs() -> dict[str, Experiment]:
    """Run the whole command (teacher run and demo distillation); return the demo team's runs by kind."""
    call_command("demo_setup", stdout=io.StringIO())
    return {exp.config["kind"]: exp for exp in Experiment.objects.filter(team__slug="demo")}


def test_a_missing_teacher_is_queued_as_the_first_run_instead_of_trained_here(db, root, wake):
    started = time.monotonic()
    runs = setup_demo_with_runs()
    assert time.monotonic() - started < 60  # no training: saving the untrained base takes about a second
    teacher_run, distillation = runs["finetune_teacher"], runs["distill"]
    teacher = Checkpoint.objects.get(name=TEACHER_NAME)
    assert not (root / "demo" / TEACHER_NAME / "config.json").exists()
    assert teacher_run.status == S.QUEUED and teacher_run.teacher.name == INITIAL_NAME
    assert Path(teacher_run.teacher.path, "config.json").exists()
    assert teacher_run.config["output_dir"] == teacher.path == str(root / "demo" / TEACHER_NAME)
    assert teacher.trained_by == teacher_run and teacher.info["num_labels"] == len(demo_labels())
    assert distillation.teacher == teacher and distillation.depends_on == teacher_run
    assert queue.claim_next("default", "w1") == teacher_run.pk
    assert queue.claim_next("default", "w1") is None  # the distillation waits for the teacher
    assert wake == ["default", "default"]


def test_running_it_again_queues_nothing_and_trains_nothing(db, root, wake):
    first = setup_demo_with_runs()
    again = setup_demo_with_runs()
    assert {k: e.pk for k, e in again.items()} == {k: e.pk for k, e in first.items()}
    assert Experiment.objects.count() == 2 and Checkpoint.objects.count() == 2


def test_running_it_again_after_the_teacher_was_trained_queues_nothing(db, root, wake):
    runs = setup_demo_with_runs()
    Experiment.objects.filter(pk=runs["finetune_teacher"].pk).update(status=S.SUCCEEDED)
    Experiment.objects.filter(pk=runs["distill"].pk).update(status=S.SUCCEEDED)
    tiny_demo_teacher(root / "demo" / TEACHER_NAME)
    assert setup_demo_with_runs().keys() == {"finetune_teacher", "distill"} and Experiment.objects.count() == 2


def test_a_teacher_already_on_disk_is_used_at_once(db, root, wake):
    tiny_demo_teacher(root / "demo" / TEACHER_NAME)
    runs = setup_demo_with_runs()
    assert set(runs) == {"distill"} and runs["distill"].depends_on is None
    assert Checkpoint.objects.get(name=TEACHER_NAME).trained_by is None
