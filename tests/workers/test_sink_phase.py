"""The database sink keeps the run's current phase on its row, at once on a change, throttled in between."""

from __future__ import annotations

import pytest

from tests.workers.conftest import FakeClock
from webapp.experiments.models import Experiment
from workers.sink import DatabaseSink


@pytest.fixture
def experiment(make_experiment):
    return make_experiment("e", status=Experiment.Status.RUNNING)


def phase(sink, name, done, total=1000, finished=False):
    sink.emit("phase", {"name": name, "label": name.title(), "index": 3, "done": done, "total": total,
                        "unit": "example", "rate": 50.0 if done else None, "eta_seconds": 19.0 if done else None,
                        "elapsed_seconds": done / 50, "finished": finished})


def stored(experiment) -> dict | None:
    experiment.refresh_from_db(fields=["phase"])
    return experiment.phase


def test_a_new_phase_is_stored_at_once(experiment):
    sink = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=FakeClock())
    phase(sink, "teacher", 0)
    assert stored(experiment) == {"name": "teacher", "label": "Teacher", "done": 0, "total": 1000,
                                  "unit": "example", "rate": None, "eta_seconds": None, "elapsed_seconds": 0.0,
                                  "finished": False}


def test_progress_within_a_phase_is_written_every_flush_interval_not_every_event(experiment):
    clock = FakeClock()
    sink = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=clock)
    phase(sink, "teacher", 0)
    clock.now = 1.0
    phase(sink, "teacher", 50)
    assert stored(experiment)["done"] == 0  # a second later: not yet
    clock.now = 2.5
    phase(sink, "teacher", 125)
    assert stored(experiment)["done"] == 125 and stored(experiment)["eta_seconds"] == 19.0


def test_the_end_of_a_phase_and_the_next_phase_are_written_at_once(experiment):
    clock = FakeClock()
    sink = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=clock)
    phase(sink, "teacher", 0)
    clock.now = 0.5
    phase(sink, "teacher", 1000, finished=True)
    assert stored(experiment)["finished"] is True
    clock.now = 0.6
    phase(sink, "training", 0, total=40)
    assert stored(experiment)["name"] == "training" and stored(experiment)["total"] == 40


def test_storing_the_phase_leaves_the_metric_progress_alone(experiment):
    sink = DatabaseSink(experiment.pk, clock=FakeClock())
    sink.emit("start", {"total_steps": 10})
    phase(sink, "training", 0, total=10)
    experiment.refresh_from_db()
    assert experiment.total_steps == 10 and experiment.current_step == 0 and experiment.phase["name"] == "training"


def test_a_real_runs_phases_reach_the_row_and_it_ends_on_the_export(experiment, tiny_run_config, tmp_path):
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    seen = []

    class Watching(DatabaseSink):
        def _store_phase(self, payload):
            super()._store_phase(payload)
            seen.append(stored(experiment)["name"])

    run(ExperimentConfig.from_dict(tiny_run_config(tmp_path / "out", max_steps=5)), sink=Watching(experiment.pk))
    assert list(dict.fromkeys(seen)) == ["reading", "tokenising", "teacher", "training", "evaluating",
                                         "teacher_test", "size", "export"]  # no augmentation in this config
    assert stored(experiment) | {"elapsed_seconds": 0} == {
        "name": "export", "label": "Exporting", "done": 0, "total": None, "unit": "file", "rate": None,
        "eta_seconds": None, "elapsed_seconds": 0, "finished": True}


def test_a_sink_whose_claim_was_given_away_stores_no_phase(experiment):
    from webapp.gpuqueue.queue import ClaimLost

    Experiment.objects.filter(pk=experiment.pk).update(task_id="claim-2")  # another worker took the run over
    stale = DatabaseSink(experiment.pk, flush_seconds=2.0, clock=FakeClock(), token="claim-1")
    with pytest.raises(ClaimLost, match="another worker"):
        phase(stale, "teacher", 0)
    assert stored(experiment) is None
