"""The GPUs an experiment asks for: a form field and an API input, validated against the global batch."""

from __future__ import annotations

from unittest import mock

import pytest

from tests.webapp.api.test_api_experiments import post_json
from webapp.experiments.models import Experiment

URL = "/experiments/new/"


@pytest.fixture
def wake():
    with mock.patch("workers.dispatch.wake_workers") as wake:
        yield wake


@pytest.fixture
def form_data(acme, checkpoint, dataset):
    return {"name": "on 4 GPUs", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
            "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "3", "batch_size": "64",
            "learning_rate": "0.001", "max_length": "32"}


def test_the_form_queues_a_run_on_several_gpus(alice_client, form_data, wake):
    assert b'name="gpus"' in alice_client.get(URL).content
    response = alice_client.post(URL, {**form_data, "gpus": "4"})
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().gpus == 4


@pytest.mark.parametrize(("gpus", "batch", "message"), [
    ("9", "64", "less than or equal to 8"),
    ("0", "64", "greater than or equal to 1"),
    ("3", "64", "must divide by the GPUs (3)"),
])
def test_the_form_refuses_a_gpu_count_out_of_range_or_not_dividing_the_batch(alice_client, form_data, wake, gpus,
                                                                             batch, message):
    response = alice_client.post(URL, {**form_data, "gpus": gpus, "batch_size": batch})
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors["gpus"])
    assert not Experiment.objects.exists()


def test_the_api_takes_gpus_and_defaults_to_one(api, checkpoint, dataset, wake):
    base = {"name": "api", "teacher": checkpoint.pk, "dataset": dataset.pk}
    two = post_json(api, "/api/experiments/", {**base, "gpus": 2})
    assert two.status_code == 201, two.json()
    assert Experiment.objects.get(pk=two.json()["id"]).gpus == 2
    assert two.json()["gpus"] == 2 and two.json()["gpu_ids"] == []  # booked by the claim, not yet
    one = post_json(api, "/api/experiments/", base)
    assert Experiment.objects.get(pk=one.json()["id"]).gpus == 1
    refused = post_json(api, "/api/experiments/", {**base, "gpus": 12})
    assert refused.status_code == 400 and "gpus" in refused.json()["fields"]
