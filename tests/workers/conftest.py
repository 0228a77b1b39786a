"""Fixtures for the worker tests: experiments of one team on a placeholder teacher and dataset."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from webapp.accounts.models import Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset


class FakeClock:
    """A clock the test moves by hand (`clock.now += 5`), for the sink's flush timing."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_system_samples(monkeypatch):
    """These tests compare stored points exactly; tests/workers/test_sysmetrics.py turns sampling on itself."""
    monkeypatch.setenv("DISTILLERY_SYSTEM_METRICS_SECONDS", "0")


@pytest.fixture
def make_experiment(db):
    user = get_user_model().objects.create_user("alice", password="pw")
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])

    def make(name: str, **fields) -> Experiment:
        return Experiment.objects.create(team=team, owner=user, name=name, teacher=checkpoint, dataset=dataset,
                                         student_type="textcnn", **{"config": {}, **fields})

    return make


# --- Fault tests: real worker subprocesses on Postgres + Redis ---------------------------

LEASE = 5  # seconds; the smallest DISTILLERY_LEASE_SECONDS allows, so recovery tests stay short


@pytest.fixture
def real_services(transactional_db, settings):
    """Skip unless the tests run on Postgres and Redis; CI (DISTILLERY_REQUIRE_SERVICES=1) must have them."""
    import os

    from django.db import connection

    missing = []
    if connection.vendor != "postgresql":
        missing.append("DATABASE_URL=postgres://...")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        missing.append("CELERY_BROKER_URL=redis://...")
    if missing:
        message = f"fault tests need real services: set {' and '.join(missing)}"
        if os.environ.get("DISTILLERY_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    settings.LEASE_SECONDS = LEASE
    return settings.CELERY_BROKER_URL


@pytest.fixture
def start_worker(real_services, worker_process):
    """A worker with a short lease that runs the cheap stand-in distiller unless told otherwise."""

    def start(name: str, fake: bool = True, **env: str):
        base = {"DISTILLERY_LEASE_SECONDS": str(LEASE), "DISTILLERY_FAKE_DISTILLER": "1" if fake else "0"}
        return worker_process(name=name, env={**base, **env})

    return start


def wake(pool: str = "default", broker_url: str | None = None, times: int = 1) -> None:
    """Send `times` wake-ups to `pool`, through `broker_url` (default: the configured broker)."""
    from django.conf import settings

    from workers.celery import app
    from workers.dispatch import pool_queue

    with app.connection_for_write(broker_url or settings.CELERY_BROKER_URL) as conn:
        for _ in range(times):
            app.send_task("workers.tasks.run_next", args=[pool], queue=pool_queue(pool), connection=conn)


def housekeeping() -> None:
    """What the beat task does every 15 s, run from the test when it polls."""
    from webapp.gpuqueue import queue

    queue.recover_lost_runs()
    if queue.pools_with_work():
        wake()


@pytest.fixture
def fake_job(make_experiment):
    """A queued experiment for the stand-in distiller: `steps` steps of `sleep` seconds."""

    def make(name: str = "job", steps: int = 3, sleep: float = 0.0, **fields):
        fake = {"steps": steps, "sleep": sleep, **fields.pop("fake", {})}
        return make_experiment(name, **fields, config={"fake": fake})

    return make


@pytest.fixture(scope="session")
def tiny_run_config(tmp_path_factory):
    """A real distill_core config: a 1-layer random teacher, 64 demo rows, `max_steps` steps logged each step."""
    from distill_core.config import ExperimentConfig
    from distill_core.testing import make_tiny_teacher
    from tests.conftest import demo_labels, write_demo_slice

    root = tmp_path_factory.mktemp("tiny-run")
    paths = write_demo_slice(root / "data", train=64, dev=16, test=16)
    text = "".join(p.read_text(encoding="utf-8") for p in paths.values())
    labels = demo_labels()
    make_tiny_teacher(root / "teacher", labels, text, layers=1, hidden=16, heads=2)

    def config(output_dir, max_steps: int = 30) -> dict:
        return ExperimentConfig.from_dict({
            "name": "tiny", "output_dir": str(output_dir),
            "data": {"train": str(paths["train"]), "dev": str(paths["dev"]), "test": str(paths["test"]),
                     "labels": labels, "max_length": 16},
            "teacher": {"path": str(root / "teacher")},
            "student": {"type": "textcnn"},
            "train": {"epochs": 10, "batch_size": 8, "max_steps": max_steps, "log_every": 1, "device": "cpu"},
        }).to_dict()

    return config


def job_child(worker) -> int:
    """The pid of a worker's pool child: with concurrency 1 its only child, the process that runs the job."""
    from pathlib import Path

    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(fields[1]) == worker.proc.pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    assert len(children) == 1, f"expected one pool child of {worker.proc.pid}, found {children}"
    return children[0]


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def reference_run(make_experiment):
    """Run a config uninterrupted in this process, through the worker's own execute() and sink; return its row.

    Single-threaded, as the fault tests' workers are (OMP_NUM_THREADS=1), so both compute bitwise the same.
    """
    import torch

    from webapp.gpuqueue import queue
    from workers.tasks import execute

    def run(config: dict):
        exp = make_experiment("uninterrupted", config=config)
        assert queue.claim_next("default", "reference", "reference-token") == exp.pk
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            execute(exp.pk, "reference-token")
        finally:
            torch.set_num_threads(threads)
        exp.refresh_from_db()
        assert exp.status == Experiment.Status.SUCCEEDED, exp.error
        return exp

    return run


def points_of(exp) -> list[tuple[str, int, float]]:
    """Every stored metric point of `exp`, sorted: duplicates would show as repeated (key, step) pairs."""
    from webapp.metrics.models import MetricPoint

    return sorted(MetricPoint.objects.filter(experiment=exp).values_list("key", "step", "value"))
