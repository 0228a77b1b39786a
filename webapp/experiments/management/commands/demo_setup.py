"""Prepare the demo: an admin, a team, the bundled dataset, the demo teacher and one queued run.

Idempotent: every step is skipped when its object exists, so `make run` can call it on each
start. Nothing is trained here, so the dashboard is up within seconds: when the demo team's
folder (var/teachers/demo/) holds no teacher yet, an untrained char-level BERT is saved beside
it and a "finetune_teacher" run that trains it into the teacher's directory is queued first;
the teacher's checkpoint row names that run (`trained_by`), so the demo distillation waits for
it and starts by itself when it succeeds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry import ownership
from webapp.registry.models import Checkpoint, Dataset

DEMO_DATA = Path(__file__).resolve().parents[2] / "demo_data" / "thucnews"
TEACHER_NAME = "demo-thucnews-bert"
INITIAL_NAME = f"{TEACHER_NAME}-init"  # the untrained base the teacher's training run starts from
TEACHER_RUN_NAME = "Training the demo teacher"
# The demo teacher's shape and recipe: 2 x 128, 752 steps, about 8x cheaper than the 4 x 256 it replaced so the
# first distillation finishes within minutes of `make run` (docs/BENCHMARKS.md, "Up at once").
TEACHER_SHAPE = {"hidden_size": 128, "num_layers": 2, "heads": 4, "intermediate": 512}
TEACHER_FIELDS = {"name": TEACHER_RUN_NAME, "kind": "finetune_teacher", "student_type": "textcnn", "seed": 13,
                  "batch_size": 32, "learning_rate": 1e-3, "warmup_ratio": 0.1, "weight_decay": 0.01,
                  "max_length": 32}
DEMO_USER = os.environ.get("DISTILLERY_DEMO_USER", "admin")
DEMO_PASSWORD = os.environ.get("DISTILLERY_DEMO_PASSWORD", "distillery")


class Command(BaseCommand):
    help = "Create the demo admin, team, dataset, teacher checkpoint and one queued experiment."

    def add_arguments(self, parser):
        parser.add_argument("--no-experiment", action="store_true", help="do not queue the demo distillation (a missing teacher's training run is still queued)")
        parser.add_argument("--teacher-epochs", type=int, default=4)

    def handle(self, *args, no_experiment: bool = False, teacher_epochs: int = 4, **options):
        user = self._admin()
        team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
        Membership.objects.get_or_create(team=team, user=user, defaults={"role": Membership.Role.ADMIN})
        dataset = self._dataset(team, user)
        checkpoint = self._teacher(team, user, dataset, teacher_epochs)
        # Runs that train teachers do not count: the demo distillation is queued once, beside them.
        if not no_experiment and not team.experiments.exclude(config__kind="finetune_teacher").exists():
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
        from webapp.registry.datasets import compute_stats

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
        """The demo teacher's row: registered from disk when trained, else with its training run queued."""
        from distill_core.teachers import inspect_checkpoint

        checkpoint = Checkpoint.objects.filter(team=team, name=TEACHER_NAME).select_related("trained_by").first()
        if checkpoint is not None:  # trained, or its training run is queued, running or ended (see its page)
            run = checkpoint.trained_by
            if run is not None and run.status in (Experiment.Status.FAILED, Experiment.Status.CANCELLED):
                self.stdout.write(self.style.WARNING(
                    f"The demo teacher's training run #{run.pk} {run.get_status_display().lower()}; requeue it "
                    "from the queue page, or `make clean` to start over."))
            return checkpoint
        folder = ownership.checkpoint_folders(team)[0]
        path = folder / TEACHER_NAME
        legacy = Path(settings.CHECKPOINT_ROOTS[0]).resolve() / TEACHER_NAME  # before per-team folders
        if not (path / "config.json").exists() and (legacy / "config.json").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(legacy, path)  # trained by an older demo_setup: moved, not trained again
            self.stdout.write(f"Moved the demo teacher from {legacy} into the team's folder {path.parent}.")
        if (path / "config.json").exists():
            return Checkpoint.objects.create(team=team, name=TEACHER_NAME, path=str(path.resolve()),
                                             info=inspect_checkpoint(path), created_by=user)
        initial = self._initial_teacher(team, user, dataset, folder / INITIAL_NAME)
        return self._queue_teacher_run(team, user, dataset, initial, path, epochs)

    def _initial_teacher(self, team: Team, user, dataset: Dataset, path: Path) -> Checkpoint:
        """The untrained char-level BERT the teacher's training run starts from (saved in about a second)."""
        from distill_core.teacher_training import save_initial_teacher
        from distill_core.teachers import inspect_checkpoint

        checkpoint = Checkpoint.objects.filter(team=team, name=INITIAL_NAME).first()
        if checkpoint is not None:
            return checkpoint
        if not (path / "config.json").exists():
            save_initial_teacher(dataset.train_path, dataset.labels, path, seed=TEACHER_FIELDS["seed"],
                                 **TEACHER_SHAPE)
        return Checkpoint.objects.create(team=team, name=INITIAL_NAME, path=str(path.resolve()),
                                         info=inspect_checkpoint(path), created_by=user)

    def _queue_teacher_run(self, team: Team, user, dataset: Dataset, initial: Checkpoint, path: Path,
                           epochs: int) -> Checkpoint:
        """Queue the run that trains `initial` into `path`; register `path` as the teacher it produces."""
        from webapp.experiments.configs import create_experiment

        with transaction.atomic():
            run = create_experiment(team=team, owner=user, checkpoint=initial, dataset=dataset,
                                    fields={**TEACHER_FIELDS, "epochs": epochs})
            # The new teacher goes into the team's folder, where checkpoints live, not the run's artifacts.
            run.config = {**run.config, "output_dir": str(path.resolve())}
            run.save(update_fields=["config"])
            # Same architecture and labels as the base, so the distillation's form checks hold already.
            checkpoint = Checkpoint.objects.create(team=team, name=TEACHER_NAME, path=str(path.resolve()),
                                                   info=initial.info, created_by=user, trained_by=run)
        self.stdout.write(f"Queued #{run.pk}, training the demo teacher into {path} "
                          "(watch it on its page; the demo distillation starts when it succeeds).")
        return checkpoint

    def _queue_experiment(self, team: Team, user, checkpoint: Checkpoint, dataset: Dataset) -> None:
        from webapp.experiments.configs import create_experiment

        fields = {
            "name": "Demo: BERT → TextCNN (T=2, α=0.8)", "student_type": "textcnn", "temperature": 2.0,
            "alpha": 0.8, "epochs": 8, "batch_size": 64, "learning_rate": 3e-3, "max_length": 32,
        }
        with transaction.atomic():
            experiment = create_experiment(team=team, owner=user, checkpoint=checkpoint, dataset=dataset, fields=fields)
        waits = f", after #{experiment.depends_on_id}" if experiment.depends_on_id else ""
        self.stdout.write(f"Queued the demo experiment #{experiment.pk}{waits}.")
