"""Prepare the demo: an admin, a team, the bundled dataset, a small teacher and one queued run.

Idempotent: every step is skipped when its object exists, so `make run` can call it on
each start. The teacher is trained once (a few minutes on 2 CPU cores at most) and
cached in the demo team's folder, var/teachers/demo/.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import Membership, Team
from webapp.experiments import ownership
from webapp.experiments.models import Checkpoint, Dataset

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo_data" / "thucnews"
TEACHER_NAME = "demo-thucnews-bert"
DEMO_USER = os.environ.get("DISTILLERY_DEMO_USER", "admin")
DEMO_PASSWORD = os.environ.get("DISTILLERY_DEMO_PASSWORD", "distillery")


class Command(BaseCommand):
    help = "Create the demo admin, team, dataset, teacher checkpoint and one queued experiment."

    def add_arguments(self, parser):
        parser.add_argument("--no-experiment", action="store_true", help="do not queue the demo experiment")
        parser.add_argument("--teacher-epochs", type=int, default=4)

    def handle(self, *args, no_experiment: bool = False, teacher_epochs: int = 4, **options):
        user = self._admin()
        team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": Membership.Role.ADMIN})
        dataset = self._dataset(team, user)
        checkpoint = self._teacher(team, user, dataset, teacher_epochs)
        if not no_experiment and not team.experiments.exists():
            self._queue_experiment(team, user, checkpoint, dataset)
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready. Log in at /accounts/login/ as {DEMO_USER} / {DEMO_PASSWORD} "
            "(change the password in /admin/)."))

    def _admin(self):
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USER).first()
        if user is None:
            user = User.objects.create_superuser(DEMO_USER, email="", password=DEMO_PASSWORD)
            self.stdout.write(f"Created the demo admin {DEMO_USER!r}.")
        return user

    def _dataset(self, team: Team, user) -> Dataset:
        from webapp.experiments.datasets import compute_stats

        dataset = Dataset.objects.filter(team=team, name="THUCNews demo").first()
        if dataset is not None:
            return dataset
        dataset = Dataset(
            team=team, name="THUCNews demo", created_by=user, format="tsv", has_header=False,
            train_path=str(DEMO_DATA / "train.tsv"), dev_path=str(DEMO_DATA / "dev.tsv"),
            test_path=str(DEMO_DATA / "test.tsv"), text_column="0", label_column="1",
            labels=(DEMO_DATA / "labels.txt").read_text(encoding="utf-8").split(),
        )
        dataset.stats = compute_stats(dataset)
        dataset.save()
        self.stdout.write("Registered the bundled THUCNews demo dataset (8,000 titles, 10 classes).")
        return dataset

    def _teacher(self, team: Team, user, dataset: Dataset, epochs: int) -> Checkpoint:
        from distill_core.teachers import inspect_checkpoint, train_teacher

        checkpoint = Checkpoint.objects.filter(team=team, name=TEACHER_NAME).first()
        # An existing row keeps its directory (its experiments name it); a new one lives in the team's folder.
        path = Path(checkpoint.path) if checkpoint else ownership.checkpoint_folders(team)[0] / TEACHER_NAME
        legacy = Path(settings.CHECKPOINT_ROOTS[0]).resolve() / TEACHER_NAME  # before per-team folders
        if not (path / "config.json").exists() and checkpoint is None and (legacy / "config.json").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(legacy, path)  # trained by an older demo_setup: moved, not trained again
            self.stdout.write(f"Moved the demo teacher from {legacy} into the team's folder {path.parent}.")
        if not (path / "config.json").exists():
            self.stdout.write(f"Training the demo teacher (a small char-level BERT) into {path} ...")
            started = time.monotonic()
            accuracy = train_teacher(
                train_file=dataset.train_path, dev_file=dataset.dev_path, labels=dataset.labels,
                output_dir=path, epochs=epochs, seed=13, hidden_size=256, num_layers=4, heads=4, intermediate=1024,
                lr=5e-4,
                progress=lambda msg: self.stdout.write(f"  {msg}"),
            )
            self.stdout.write(f"Teacher trained in {time.monotonic() - started:.0f} s, dev accuracy {accuracy:.3f}.")
        if checkpoint is None:
            checkpoint = Checkpoint.objects.create(
                team=team, name=TEACHER_NAME, path=str(path.resolve()), info=inspect_checkpoint(path),
                created_by=user)
        return checkpoint

    def _queue_experiment(self, team: Team, user, checkpoint: Checkpoint, dataset: Dataset) -> None:
        from webapp.experiments.configs import create_experiment

        fields = {
            "name": "Demo: BERT → TextCNN (T=2, α=0.8)", "student_type": "textcnn", "temperature": 2.0,
            "alpha": 0.8, "epochs": 8, "batch_size": 64, "learning_rate": 3e-3, "max_length": 32,
        }
        with transaction.atomic():
            experiment = create_experiment(team=team, owner=user, checkpoint=checkpoint, dataset=dataset, fields=fields)
        self.stdout.write(f"Queued the demo experiment #{experiment.pk}.")
