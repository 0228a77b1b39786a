"""The database sink: batched, idempotent metric writes that survive a dropped connection."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError

from webapp.accounts.models import Team
from webapp.experiments.models import Checkpoint, Dataset, Experiment, MetricPoint
from workers import sink as sink_module
from workers.sink import DatabaseSink


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def experiment(db):
    user = get_user_model().objects.create_user("alice", password="pw")
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])
    return Experiment.objects.create(team=team, owner=user, name="e", teacher=checkpoint, dataset=dataset,
                                     student_type="textcnn", config={}, status=Experiment.Status.RUNNING)


def step(sink, n, loss):
    sink.emit("step", {"step": n, "epoch": 1, "metrics": {"loss": loss, "lr": 0.1}})


def test_it_buffers_steps_until_the_flush_interval(experiment):
    clock = FakeClock()
    sink = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=clock)
    sink.emit("start", {"total_steps": 10})
    step(sink, 1, 0.9)
    assert MetricPoint.objects.count() == 0
    clock.now = 2.5
    step(sink, 2, 0.8)
    assert MetricPoint.objects.filter(key="train/loss").count() == 2
    experiment.refresh_from_db()
    assert experiment.total_steps == 10 and experiment.current_step == 2
    assert experiment.progress == pytest.approx(0.2)
    assert experiment.latest == {"train/loss": 0.8, "train/lr": 0.1}


def test_evaluations_flush_at_once_and_keep_the_best(experiment):
    sink = DatabaseSink(experiment.pk, clock=FakeClock())
    sink.emit("eval", {"step": 5, "epoch": 1, "split": "dev", "metrics": {"accuracy": 0.7}})
    sink.emit("eval", {"step": 10, "epoch": 2, "split": "dev", "metrics": {"accuracy": 0.6}})
    experiment.refresh_from_db()
    assert experiment.best == {"dev/accuracy": 0.7}
    assert list(MetricPoint.objects.filter(key="dev/accuracy").order_by("step").values_list("step", "value")) == [
        (5, 0.7), (10, 0.6)]


def test_a_repeated_flush_writes_no_duplicates(experiment):
    sink = DatabaseSink(experiment.pk, clock=FakeClock())
    step(sink, 1, 0.5)
    points = dict(sink.buffer)
    sink.flush()
    sink.buffer.update(points)  # the same points again, as after a retry
    sink.flush()
    assert MetricPoint.objects.filter(key="train/loss").count() == 1


def test_a_dropped_connection_is_retried_without_losing_points(experiment, monkeypatch):
    sink = DatabaseSink(experiment.pk, clock=FakeClock())
    step(sink, 1, 0.5)
    real = sink_module.insert_points
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(sink_module, "insert_points", flaky)
    monkeypatch.setattr("workers.sink.time.sleep", lambda s: None)
    sink.flush()
    assert calls["n"] == 2
    assert MetricPoint.objects.filter(key="train/loss").count() == 1


def test_it_reports_a_cancel_request_on_the_next_flush(experiment):
    clock = FakeClock()
    sink = DatabaseSink(experiment.pk, flush_seconds=1.0, clock=clock)
    assert sink.should_cancel() is False
    Experiment.objects.filter(pk=experiment.pk).update(cancel_requested=True)
    clock.now = 5
    assert sink.should_cancel() is True
