"""The database sink: batched, idempotent metric writes that survive a dropped connection, fenced by the claim."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError

from tests.workers.conftest import FakeClock
from webapp.accounts.models import Team
from webapp.experiments.models import Experiment
from webapp.gpuqueue.queue import ClaimLost
from webapp.metrics.models import MetricPoint
from webapp.registry.models import Checkpoint, Dataset
from workers import sink as sink_module
from workers.sink import DatabaseSink


@pytest.fixture
def experiment(db):
    user = get_user_model().objects.create_user("alice", password="pw")
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])
    return Experiment.objects.create(team=team, owner=user, name="e", teacher=checkpoint, dataset=dataset,
                                     student_type="textcnn", config={}, status=Experiment.Status.RUNNING,
                                     task_id="claim-1")


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


def test_a_checkpoint_flushes_the_points_it_covers_at_once(experiment):
    sink = DatabaseSink(experiment.pk, flush_seconds=60, clock=FakeClock(), token="claim-1")
    sink.emit("start", {"total_steps": 10})
    for n in (1, 2, 3):
        step(sink, n, 1.0 / n)
    assert MetricPoint.objects.count() == 0  # still buffered
    sink.emit("checkpoint", {"step": 3, "path": "/out/checkpoint/last.pt"})
    assert sorted(MetricPoint.objects.filter(key="train/loss").values_list("step", flat=True)) == [1, 2, 3]
    assert Experiment.objects.get(pk=experiment.pk).current_step == 3


def test_a_sink_whose_claim_was_taken_over_writes_nothing_and_raises(experiment):
    sink = DatabaseSink(experiment.pk, flush_seconds=60, clock=FakeClock(), token="claim-1")
    sink.emit("start", {"total_steps": 10})
    step(sink, 1, 0.9)
    sink.flush()
    # The lease ran out; the housekeeping re-queued the run and another worker claimed and finished it.
    Experiment.objects.filter(pk=experiment.pk).update(task_id="claim-2", status=Experiment.Status.SUCCEEDED,
                                                       current_step=10, progress=1.0, latest={"train/loss": 0.1})
    before = Experiment.objects.values().get(pk=experiment.pk)
    step(sink, 2, 0.8)
    for emit in (lambda: sink.flush(),
                 lambda: sink.emit("eval", {"step": 2, "epoch": 1, "split": "dev", "metrics": {"accuracy": 0.5}}),
                 lambda: sink.emit("checkpoint", {"step": 2, "path": "/out/checkpoint/last.pt"}),
                 lambda: sink.emit("export", {"path": "/out"}),
                 lambda: sink.emit("start", {"total_steps": 10})):
        with pytest.raises(ClaimLost, match="another worker"):
            emit()
    assert Experiment.objects.values().get(pk=experiment.pk) == before
    assert list(MetricPoint.objects.values_list("key", "step")) == [("train/loss", 1), ("train/lr", 1)]


def test_a_sink_of_the_current_claim_keeps_writing_while_the_row_is_held(experiment):
    Experiment.objects.filter(pk=experiment.pk).update(task_id="claim-2")
    stale = DatabaseSink(experiment.pk, clock=FakeClock(), token="claim-1")
    current = DatabaseSink(experiment.pk, clock=FakeClock(), token="claim-2")
    step(stale, 1, 0.9)
    step(current, 1, 0.7)
    with pytest.raises(ClaimLost):
        stale.flush()
    current.flush()
    assert list(MetricPoint.objects.filter(key="train/loss").values_list("value", flat=True)) == [0.7]


def test_a_resumed_attempt_keeps_the_best_and_latest_of_earlier_attempts(experiment):
    # The first attempt evaluated 0.9 at step 8 and was killed; its checkpoint was step 5.
    Experiment.objects.filter(pk=experiment.pk).update(
        best={"dev/accuracy": 0.9}, latest={"dev/accuracy": 0.9, "train/loss": 0.2, "train/lr": None})
    sink = DatabaseSink(experiment.pk, clock=FakeClock(), token="claim-1")
    sink.emit("start", {"total_steps": 20})
    step(sink, 6, 0.3)
    sink.emit("eval", {"step": 6, "epoch": 1, "split": "dev", "metrics": {"accuracy": 0.7}})
    experiment.refresh_from_db()
    assert experiment.best == {"dev/accuracy": 0.9}
    assert experiment.latest == {"dev/accuracy": 0.7, "train/loss": 0.3, "train/lr": 0.1}
    sink.emit("eval", {"step": 12, "epoch": 2, "split": "dev", "metrics": {"accuracy": 0.95}})
    assert Experiment.objects.get(pk=experiment.pk).best == {"dev/accuracy": 0.95}


def test_a_flush_before_training_starts_keeps_the_best_of_earlier_attempts(experiment):
    # Phases before training (reading, teacher labelling) poll the cancel flag, which flushes.
    Experiment.objects.filter(pk=experiment.pk).update(best={"dev/accuracy": 0.9}, latest={"dev/accuracy": 0.9})
    clock = FakeClock()
    sink = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=clock, token="claim-1")
    clock.now += 5
    sink.should_cancel()  # flushes before any "start" event
    assert Experiment.objects.get(pk=experiment.pk).best == {"dev/accuracy": 0.9}
    sink.emit("start", {"total_steps": 20})
    sink.emit("eval", {"step": 6, "epoch": 1, "split": "dev", "metrics": {"accuracy": 0.7}})
    assert Experiment.objects.get(pk=experiment.pk).best == {"dev/accuracy": 0.9}


def test_every_point_a_checkpoint_covers_is_stored_before_the_checkpoint_is_renamed_into_place(
        experiment, tiny_run_config, tmp_path, monkeypatch):
    import torch

    from distill_core import checkpointing
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    config = tiny_run_config(tmp_path / "out", max_steps=12)
    config["train"]["checkpoint_every"] = 5
    real_replace = checkpointing.os.replace
    seen: list[tuple[int, list[int]]] = []

    def replace(src, dst):
        covered = torch.load(src, weights_only=False)["step"]
        stored = list(MetricPoint.objects.filter(experiment=experiment, key="train/loss", step__lte=covered)
                      .order_by("step").values_list("step", flat=True))
        seen.append((covered, stored))
        real_replace(src, dst)

    monkeypatch.setattr(checkpointing.os, "replace", replace)
    sink = DatabaseSink(experiment.pk, flush_seconds=3600, clock=FakeClock(), token="claim-1")  # no timed flush
    run(ExperimentConfig.from_dict(config), sink=sink)
    assert [covered for covered, _ in seen] == [5, 8, 10, 12]  # every 5 steps, each epoch end (8) and the last step
    assert all(stored == list(range(1, covered + 1)) for covered, stored in seen)


def test_best_keeps_the_highest_accuracy_and_the_lowest_loss_or_perplexity():
    from workers.sink import better

    assert better("dev/accuracy", 0.9, 0.8) and not better("dev/accuracy", 0.7, 0.8)
    assert better("dev/perplexity", 3.0, 4.0) and not better("dev/perplexity", 5.0, 4.0)
    assert better("dev/distill_loss", 0.1, 0.2) and better("dev/macro_f1", 0.5, None)
