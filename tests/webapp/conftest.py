"""Fixtures for the web tests: alice & bob in Acme, charlie in Other, a tiny teacher, a dataset.

Every test gets its own DATASET_ROOT/ARTIFACT_ROOT under tmp_path; the tiny teacher is
written once per session into Acme's folder of the checkpoint root (<root>/acme/), the only
place Acme may register checkpoints from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.webapp.factories import DEV_ROWS, LABELS, PASSWORD, TRAIN_ROWS, tsv
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset


@pytest.fixture(scope="session")
def teacher_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("teachers")


@pytest.fixture(scope="session")
def teacher_dir(teacher_root) -> Path:
    """A tiny random 3-label BERT with its tokenizer, written with save_pretrained."""
    from distill_core.testing import make_tiny_teacher

    path = teacher_root / "acme" / "tiny-bert"
    chars = sorted({ch for text, _ in TRAIN_ROWS + DEV_ROWS for ch in text})
    make_tiny_teacher(path, LABELS, "".join(chars), layers=2, hidden=32)
    return path


@pytest.fixture(scope="session")
def teacher_info(teacher_dir) -> dict:
    from distill_core.teachers import inspect_checkpoint

    return inspect_checkpoint(teacher_dir)


@pytest.fixture(scope="session", autouse=True)
def _static_root():
    # WhiteNoise warns on every request when STATIC_ROOT is missing (we serve from the finders).
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _api_contract(monkeypatch):
    """Validate every /api/ answer a test client gets against /api/schema.json (tests/webapp/contract.py)."""
    from django.test import Client

    from tests.webapp.contract import check_response

    original = Client.request

    def request(self, **env):
        response = original(self, **env)
        check_response(response)
        return response

    monkeypatch.setattr(Client, "request", request)


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path, teacher_root):
    settings.DATASET_ROOT = tmp_path / "datasets"
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.CHECKPOINT_ROOTS = [teacher_root]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def acme(db) -> Team:
    return Team.objects.create(name="Acme", slug="acme")


@pytest.fixture
def other(db) -> Team:
    return Team.objects.create(name="Other", slug="other")


def _member(username: str, team: Team, **extra):
    user = get_user_model().objects.create_user(username, password=PASSWORD, **extra)
    Membership.objects.create(team=team, user=user)
    return user


@pytest.fixture
def alice(acme):
    return _member("alice", acme)


@pytest.fixture
def bob(acme):
    return _member("bob", acme)


@pytest.fixture
def charlie(other):
    return _member("charlie", other)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_client(client, charlie):
    client.force_login(charlie)
    return client


@pytest.fixture
def checkpoint(acme, alice, teacher_dir, teacher_info) -> Checkpoint:
    return Checkpoint.objects.create(team=acme, name="tiny-bert", path=str(teacher_dir), info=teacher_info,
                                     created_by=alice)


@pytest.fixture
def dataset_files(tmp_path) -> dict[str, Path]:
    directory = tmp_path / "data"
    directory.mkdir()
    paths = {"train": directory / "train.tsv", "dev": directory / "dev.tsv"}
    paths["train"].write_text(tsv(TRAIN_ROWS), encoding="utf-8")
    paths["dev"].write_text(tsv(DEV_ROWS), encoding="utf-8")
    return paths


@pytest.fixture
def dataset(acme, alice, dataset_files) -> Dataset:
    from webapp.registry.datasets import compute_stats

    dataset = Dataset(team=acme, name="headlines", train_path=str(dataset_files["train"]),
                      dev_path=str(dataset_files["dev"]), labels=list(LABELS), created_by=alice)
    dataset.stats = compute_stats(dataset)
    dataset.save()
    return dataset


@pytest.fixture
def make_experiment(checkpoint, dataset, alice):
    """Create an Experiment of Acme in any state, with a valid config."""

    def make(status: str = Experiment.Status.QUEUED, name: str = "tiny → textcnn", **fields) -> Experiment:
        from webapp.experiments.configs import build_config

        config = build_config({"name": name, "student_type": "textcnn", "temperature": 2.0, "alpha": 0.8,
                               "epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "max_length": 16},
                              checkpoint, dataset)
        return Experiment.objects.create(team=checkpoint.team, owner=alice, name=name, teacher=checkpoint,
                                         dataset=dataset, student_type="textcnn", config=config, status=status,
                                         **fields)

    return make


@pytest.fixture
def experiment(make_experiment) -> Experiment:
    return make_experiment()


@pytest.fixture
def student_export(settings) -> Path:
    """A real (random, tiny) TextCNN export inside ARTIFACT_ROOT, as the worker writes it."""
    import torch

    from distill_core.export import save_student
    from distill_core.students import build_student
    from distill_core.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.build([text for text, _ in TRAIN_ROWS], "char")
    model = build_student("textcnn", vocab.vocab_size, len(LABELS), 16, {"num_filters": 8})
    return save_student(model, vocab, student_type="textcnn", embedding_dim=16, labels=list(LABELS), max_length=16,
                        output_dir=settings.ARTIFACT_ROOT / "experiments" / "1" / "student")


@pytest.fixture
def finished_experiment(make_experiment, student_export) -> Experiment:
    """A SUCCEEDED experiment whose results point at `student_export`."""
    from tests.webapp.factories import sample_results

    results = {**sample_results(), "export_dir": str(student_export)}
    return make_experiment(Experiment.Status.SUCCEEDED, name="finished", progress=1.0, results=results,
                           best={"dev/accuracy": 0.83})


@pytest.fixture
def api(client, alice):
    """A client for /api/ that sends alice's bearer token with every request."""
    from webapp.api.models import ApiToken

    _, secret = ApiToken.issue(alice, "tests")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


@pytest.fixture
def charlie_api(client, charlie):
    from webapp.api.models import ApiToken

    _, secret = ApiToken.issue(charlie, "tests")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


@pytest.fixture
def wake(monkeypatch):
    """Record the pools woken instead of sending to the broker."""
    woken: list[str] = []
    monkeypatch.setattr("workers.dispatch.wake_workers", woken.append)
    return woken


@pytest.fixture
def form_data(acme, checkpoint, dataset) -> dict:
    """The original ten fields of the new-experiment form, as the REST API posts them."""
    return {"name": "tiny → TextCNN", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
            "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "3", "batch_size": "64",
            "learning_rate": "0.001", "max_length": "32"}


@pytest.fixture(scope="session")
def deep_teacher_dir(teacher_root) -> Path:
    """A tiny random BERT with BERT-base's 12 layers (hidden 32), so the L3/L4/L6 match presets fit."""
    from distill_core.testing import make_tiny_teacher

    path = teacher_root / "acme" / "deep-tiny-bert"
    chars = sorted({ch for text, _ in TRAIN_ROWS + DEV_ROWS for ch in text})
    make_tiny_teacher(path, LABELS, "".join(chars), layers=12, hidden=32)
    return path


@pytest.fixture
def deep_checkpoint(acme, alice, deep_teacher_dir) -> Checkpoint:
    from distill_core.teachers import inspect_checkpoint

    return Checkpoint.objects.create(team=acme, name="deep-tiny-bert", path=str(deep_teacher_dir),
                                     info=inspect_checkpoint(deep_teacher_dir), created_by=alice)


@pytest.fixture
def eager_tasks():
    """Celery tasks run inline where they are sent (requests send them on commit: factories.run_on_commit)."""
    from workers.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved

