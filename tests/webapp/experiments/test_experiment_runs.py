"""The slice with real parts: the form queues an experiment, a real Celery worker process runs it."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint

pytestmark = pytest.mark.worker


def test_a_submitted_experiment_is_run_by_a_worker_to_success(transactional_db, worker_process, alice_client,
                                                              acme, checkpoint, dataset):
    worker = worker_process()
    response = alice_client.post("/experiments/new/", {
        "name": "tiny → TextCNN", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
        "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "2", "batch_size": "4",
        "learning_rate": "0.005", "max_length": "24"})
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment = Experiment.objects.get()

    def finished():
        experiment.refresh_from_db()
        return experiment.is_finished

    wait_for(finished, timeout=180, message=lambda: f"the run to finish; worker log:\n{worker.log()[-3000:]}")
    assert experiment.status == Experiment.Status.SUCCEEDED, experiment.error
    assert experiment.progress == 1.0 and experiment.current_step == experiment.total_steps == 10  # ceil(18/4)*2
    steps = list(MetricPoint.objects.filter(experiment=experiment, key="train/loss").values_list("step", flat=True))
    assert sorted(steps) == [10]  # train.log_every defaults to 10 steps, and the last step is always logged
    for key in ("train/kd_loss", "train/hard_loss", "train/lr"):
        assert MetricPoint.objects.filter(experiment=experiment, key=key).count() == 1, key
    assert MetricPoint.objects.filter(experiment=experiment, key="dev/accuracy").count() == 2
    cm = experiment.results["student"]["confusion_matrix"]
    assert len(cm) == 3 and sum(map(sum, cm)) == 6  # no test file: the 6 dev rows
    assert experiment.results["teacher"]["confusion_matrix"] and experiment.results["size"]["compression"] > 0
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="cm-student"' in html and 'id="size-chart"' in html


def test_a_run_that_cannot_start_fails_with_its_reason(transactional_db, worker_process, make_experiment,
                                                       alice_client, teacher_dir):
    experiment = make_experiment()
    experiment.config = {**experiment.config, "teacher": {"path": str(teacher_dir) + "-gone"}}
    experiment.save(update_fields=["config"])
    from workers.dispatch import wake_workers

    worker = worker_process()
    from django.db import transaction

    with transaction.atomic():
        wake_workers("default")

    def finished():
        experiment.refresh_from_db()
        return experiment.is_finished

    wait_for(finished, timeout=120, message=lambda: f"the run to fail; worker log:\n{worker.log()[-3000:]}")
    assert experiment.status == Experiment.Status.FAILED
    assert "does not exist" in experiment.error and "Traceback" not in experiment.error
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "The run failed" in html and "does not exist" in html
