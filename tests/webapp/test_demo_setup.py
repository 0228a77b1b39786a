"""`manage.py demo_setup` puts the demo teacher in the demo team's folder (<root>/demo/).

Training the real demo teacher takes minutes, so each test places a tiny one where the command
looks first; the command trains only when neither location holds a teacher.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import demo_labels
from webapp.experiments import ownership
from webapp.experiments.management.commands.demo_setup import TEACHER_NAME
from webapp.experiments.models import Checkpoint


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
