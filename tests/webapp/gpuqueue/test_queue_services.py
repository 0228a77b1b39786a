"""One service per queue action (webapp/gpuqueue/actions.py): the experiment page, the API and the queue
board call the same function, so a fix in one (such as cancel_requested_at, which workers/revoke.py needs)
reaches every entry point."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from webapp.experiments.models import Experiment
from webapp.gpuqueue import actions
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker

S = Experiment.Status


@pytest.fixture
def calls(monkeypatch):
    """Record every call of a queue service (and still run it)."""
    seen: list[tuple[str, tuple]] = []
    for name in ("request_cancel", "move_to_top", "move_ahead", "set_priority", "requeue", "pause_queue",
                 "pause_pool", "set_worker_mode"):
        real = getattr(actions, name)

        def spy(*args, _name=name, _real=real):
            seen.append((_name, args))
            return _real(*args)

        monkeypatch.setattr(actions, name, spy)
    return seen


@pytest.fixture
def staff(client, db):
    client.force_login(get_user_model().objects.create_user("root", password="pw", is_staff=True))
    return client


def test_the_page_the_api_and_the_board_cancel_through_one_service(client, alice, api, make_experiment, calls):
    page, through_api, board = (make_experiment(S.RUNNING, name=n) for n in ("page", "api", "board"))
    client.force_login(alice)
    client.post(reverse("experiments:cancel", args=[page.pk]))
    api.post(f"/api/experiments/{through_api.pk}/cancel/")
    client.post(reverse("gpuqueue:cancel", args=[board.pk]))
    assert [(name, args[0].pk) for name, args in calls] == [("request_cancel", page.pk),
                                                           ("request_cancel", through_api.pk),
                                                           ("request_cancel", board.pk)]
    for experiment in (page, through_api, board):  # what workers/revoke.py reads to kill a hung run
        experiment.refresh_from_db()
        assert experiment.cancel_requested and experiment.cancel_requested_at is not None


def test_every_board_action_calls_its_service(staff, make_experiment, calls, wake):
    first, second = make_experiment(name="first"), make_experiment(name="second")
    failed = make_experiment(S.FAILED, name="failed")
    worker = Worker.objects.create(name="gpu0@h", host="h", pools=["a100"])
    staff.post(reverse("gpuqueue:top", args=[second.pk]))
    staff.post(reverse("gpuqueue:ahead", args=[first.pk]), {"other": second.pk})
    staff.post(reverse("gpuqueue:priority", args=[first.pk]), {"priority": "5"})
    staff.post(reverse("gpuqueue:requeue", args=[failed.pk]))
    staff.post(reverse("gpuqueue:pause"), {"paused": "1"})
    staff.post(reverse("gpuqueue:pause"), {"paused": "0", "pool": "a100"})
    staff.post(reverse("gpuqueue:worker_mode", args=[worker.pk]), {"mode": "draining"})
    staff.post(reverse("gpuqueue:worker_mode", args=[worker.pk]), {"mode": "active"})
    assert [name for name, _ in calls] == ["move_to_top", "move_ahead", "set_priority", "requeue", "pause_queue",
                                           "pause_pool", "set_worker_mode", "set_worker_mode"]
    assert Experiment.objects.get(pk=first.pk).priority == 5 and Experiment.objects.get(pk=failed.pk).status == S.QUEUED
    assert QueueSwitch.is_paused() and Pool.objects.get(name="a100").paused is False
    assert Worker.objects.get(pk=worker.pk).mode == Worker.Mode.ACTIVE


def test_resuming_a_pool_or_a_worker_wakes_its_pools_through_dispatch(db, wake):
    worker = Worker.objects.create(name="gpu1@h", host="h", pools=["a100", "h200"])
    assert actions.pause_pool("a100", True) == (True, "Pool a100 is paused.") and wake == []
    assert actions.pause_pool("a100", False)[0] and wake == ["a100"]
    assert actions.set_worker_mode(worker, "draining") == (True, "gpu1@h finishes its job and takes no new one.")
    assert actions.set_worker_mode(worker, "active")[0] and wake == ["a100", "a100", "h200"]
    assert actions.set_worker_mode(worker, "asleep") == (False, "Choose active, draining or disabled.")


@pytest.fixture
def superuser(client, db):
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw"))
    return client


def test_the_django_admin_cancels_and_requeues_through_the_services(superuser, make_experiment, calls, wake):
    running, failed = make_experiment(S.RUNNING, name="running"), make_experiment(S.FAILED, name="failed")
    changelist = reverse("admin:experiments_experiment_changelist")
    superuser.post(changelist, {"action": "cancel", "_selected_action": [running.pk]})
    superuser.post(changelist, {"action": "requeue", "_selected_action": [failed.pk]})
    assert [(name, args[0].pk) for name, args in calls] == [("request_cancel", running.pk), ("requeue", failed.pk)]
    running.refresh_from_db()
    assert running.cancel_requested_at is not None and Experiment.objects.get(pk=failed.pk).status == S.QUEUED
    page = superuser.get(reverse("admin:experiments_experiment_change", args=[running.pk])).content.decode()
    assert 'name="status"' not in page and 'name="cancel_requested"' not in page  # shown, not editable


def test_resuming_a_pool_or_a_worker_in_the_django_admin_wakes_them_like_the_board(superuser, calls, wake):
    from types import SimpleNamespace

    from django.contrib import admin

    pool = Pool.objects.create(name="a100", paused=True)
    superuser.post(reverse("admin:gpuqueue_pool_change", args=[pool.pk]), {"name": "a100"})  # box unticked
    worker = Worker.objects.create(name="gpu0@h", host="h", pools=["h200"], mode=Worker.Mode.DRAINING)
    worker.mode = Worker.Mode.ACTIVE
    admin.site._registry[Worker].save_model(None, worker, SimpleNamespace(changed_data=["mode"]), True)
    assert [name for name, _ in calls] == ["pause_pool", "set_worker_mode"] and wake == ["a100", "h200"]
    assert Pool.objects.get(pk=pool.pk).paused is False
