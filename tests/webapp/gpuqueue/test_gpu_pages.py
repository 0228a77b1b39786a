"""The queue pages and GPUs: which GPUs each run holds, and why a multi-GPU run still waits."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from webapp.experiments.models import Experiment
from webapp.gpuqueue.models import Worker

S = Experiment.Status


@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_user("root", password="pw", is_staff=True))
    return client


@pytest.fixture
def four_gpu_worker(db):
    return Worker.objects.create(name="gpus@h", host="h", pools=["default"], device="cuda", cuda_index=0,
                                 cuda_indices=[0, 1, 2, 3])


def test_the_workers_page_shows_the_gpus_each_run_holds(staff_client, make_experiment, four_gpu_worker):
    make_experiment(name="pair", status=S.RUNNING, worker_name="gpus@h", gpus=2, gpu_ids=[0, 1])
    make_experiment(name="single", status=S.RUNNING, worker_name="gpus@h", gpus=1, gpu_ids=[3])
    body = staff_client.get(reverse("gpuqueue:workers")).content.decode()
    assert "GPU 0, 1, 2, 3" in body  # the worker's inventory
    assert "pair</a> <span class=\"muted\">· GPU 0, 1" in body and "single</a> <span class=\"muted\">· GPU 3" in body


def test_the_queue_says_how_many_gpus_a_waiting_run_needs_and_how_many_are_free(staff_client, make_experiment,
                                                                               four_gpu_worker):
    make_experiment(name="pair", status=S.RUNNING, worker_name="gpus@h", gpus=2, gpu_ids=[1, 2])
    make_experiment(name="big", gpus=4)
    make_experiment(name="fits", gpus=2)
    body = staff_client.get(reverse("gpuqueue:board")).content.decode()
    assert "waiting: needs 4 GPUs, 2 free" in body
    assert body.count("waiting for a free worker") == 1  # the 2-GPU run fits: it waits only for a wake-up
