"""GPU booking: a worker owning several GPUs claims a run only when enough of them are free, never one twice.

The GPUs are faked at the inventory boundary only (CUDA_VISIBLE_DEVICES read by inventory.visible_cuda_indices).
"""

from __future__ import annotations

import random

import pytest

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.gpuqueue.board import note
from workers import inventory

S = Experiment.Status


@pytest.fixture
def two_fake_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    return inventory.visible_cuda_indices()


def claim(gpus: list[int], token: str) -> int | None:
    return queue.claim_next("default", "gpu-host", token, gpus=gpus)


def held_gpus() -> list[list[int]]:
    return [e.gpu_ids for e in Experiment.objects.filter(status__in=queue.HELD, worker_name="gpu-host")]


def test_a_two_gpu_run_and_two_one_gpu_runs_never_overlap(make_experiment, two_fake_gpus):
    assert two_fake_gpus == [0, 1]
    big = make_experiment("big", gpus=2)
    small = [make_experiment(f"small{i}", gpus=1) for i in range(2)]
    assert claim(two_fake_gpus, "t1") == big.pk
    assert Experiment.objects.get(pk=big.pk).gpu_ids == [0, 1]
    assert claim(two_fake_gpus, "t2") is None  # both GPUs are booked
    queue.finish(big.pk, S.SUCCEEDED, token="t1")
    assert claim(two_fake_gpus, "t3") == small[0].pk
    assert claim(two_fake_gpus, "t4") == small[1].pk
    assert sorted(held_gpus()) == [[0], [1]]
    assert claim(two_fake_gpus, "t5") is None


def test_a_big_run_waits_while_small_ones_fit_and_requeue_frees_its_gpus(make_experiment, two_fake_gpus):
    small = make_experiment("small", gpus=1)
    big = make_experiment("big", gpus=2)
    assert claim(two_fake_gpus, "t1") == small.pk
    assert claim(two_fake_gpus, "t2") is None  # one GPU free: the 2-GPU run must wait
    big.refresh_from_db()
    assert note(big, False, set(), set(), {"default"}, {"default": 1}) == "waiting: needs 2 GPUs, 1 free"
    assert queue.interrupt(small.pk, "stopped", token="t1") == S.QUEUED
    assert Experiment.objects.get(pk=small.pk).gpu_ids == []
    assert claim(two_fake_gpus, "t3") == small.pk  # still first in the queue, on GPU 0 again
    assert Experiment.objects.get(pk=small.pk).gpu_ids == [0]


def test_random_claims_and_ends_never_book_a_gpu_twice(make_experiment, two_fake_gpus):
    rng = random.Random(17)
    for i in range(30):
        make_experiment(f"run{i}", gpus=rng.choice([1, 1, 2]))
    for round_ in range(200):
        held = list(Experiment.objects.filter(status__in=queue.HELD, worker_name="gpu-host"))
        if held and rng.random() < 0.5:
            done = rng.choice(held)
            queue.finish(done.pk, S.SUCCEEDED, token=done.task_id)
        else:
            claimed = claim(two_fake_gpus, f"t{round_}")
            if claimed is not None:
                exp = Experiment.objects.get(pk=claimed)
                assert len(exp.gpu_ids) == exp.gpus
        booked = [i for ids in held_gpus() for i in ids]
        assert len(booked) == len(set(booked)) and set(booked) <= {0, 1}
    assert not Experiment.objects.filter(status=S.QUEUED).exists()  # every run got its GPUs in the end


def test_a_worker_without_gpus_books_none(make_experiment, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    exp = make_experiment("cpu", gpus=2)
    assert queue.claim_next("default", "cpu-host", "t", gpus=inventory.visible_cuda_indices()) == exp.pk
    assert Experiment.objects.get(pk=exp.pk).gpu_ids == []


@pytest.mark.worker
def test_a_real_worker_with_two_fake_gpus_runs_them_without_overlap(start_worker, fake_job, monkeypatch):
    """One celery worker owning GPUs 0,1 (two job slots): a 2-GPU run and two 1-GPU runs never share a GPU."""
    from tests.workers.conftest import wake
    from tests.workers.test_faults import wait_status

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # read by inventory when the worker's argv is built
    runs = [fake_job("small0", steps=8, sleep=0.25, gpus=1), fake_job("big", steps=8, sleep=0.25, gpus=2),
            fake_job("small1", steps=8, sleep=0.25, gpus=1), fake_job("small2", steps=8, sleep=0.25, gpus=1)]
    worker = start_worker("gpus01")
    wake(times=4)
    done = [wait_status(exp, {S.SUCCEEDED}, timeout=180, workers=[worker]) for exp in runs]
    assert all(len(e.gpu_ids) == e.gpus and set(e.gpu_ids) <= {0, 1} for e in done), [e.gpu_ids for e in done]
    overlapping = 0
    for i, a in enumerate(done):
        for b in done[i + 1:]:
            if a.started_at < b.finished_at and b.started_at < a.finished_at:
                overlapping += 1
                assert not set(a.gpu_ids) & set(b.gpu_ids), (a.name, a.gpu_ids, b.name, b.gpu_ids)
    assert overlapping, "two 1-GPU runs never ran side by side: the second job slot was not used"
