"""The queue pages: staff steer the queue, members see their places and cancel their own runs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from webapp.accounts.models import Team
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker

S = Experiment.Status


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_user("root", password="pw", is_staff=True)
    client.force_login(admin)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def post(client, name: str, *args, **data):
    return client.post(reverse(f"gpuqueue:{name}", args=args), data, follow=True)


def test_staff_see_the_whole_queue_with_positions_and_reasons(staff_client, make_experiment, charlie):
    first = make_experiment(name="first")
    make_experiment(name="second")
    Team.objects.filter(pk=first.team_id).update(max_running=1)
    make_experiment(name="running", status=S.RUNNING, worker_name="gpu0@h")
    body = staff_client.get(reverse("gpuqueue:board")).content.decode()
    assert "first" in body and "second" in body and "waiting: team limit" in body
    assert "running on gpu0@h" in body


def test_members_see_only_their_teams_runs(alice_client, make_experiment, charlie, other):
    make_experiment(name="acme-run")
    body = alice_client.get(reverse("gpuqueue:board")).content.decode()
    assert "acme-run" in body and "To top" not in body


@pytest.mark.parametrize("name,data", [("top", {}), ("ahead", {"other": "1"}), ("priority", {"priority": "5"}),
                                        ("requeue", {})])
def test_non_staff_get_403_on_every_admin_action(alice_client, experiment, name, data):
    response = alice_client.post(reverse(f"gpuqueue:{name}", args=[experiment.pk]), data)
    assert response.status_code == 403


def test_non_staff_cannot_pause_drain_or_set_limits(alice_client, acme):
    worker = Worker.objects.create(name="w1", host="h")
    assert alice_client.post(reverse("gpuqueue:pause"), {"paused": "1"}).status_code == 403
    assert alice_client.post(reverse("gpuqueue:worker_mode", args=[worker.pk]), {"mode": "disabled"}).status_code == 403
    assert alice_client.post(reverse("gpuqueue:team_limit", args=[acme.pk]), {"max_running": "1"}).status_code == 403
    assert not QueueSwitch.is_paused() and Worker.objects.get(pk=worker.pk).mode == Worker.Mode.ACTIVE


def test_staff_move_a_run_to_the_top_and_ahead_of_another(staff_client, make_experiment):
    a, b, c = make_experiment(name="a"), make_experiment(name="b"), make_experiment(name="c")
    post(staff_client, "top", c.pk)
    post(staff_client, "ahead", b.pk, other=c.pk)
    assert [queue.claim_next("default", "w") for _ in range(3)] == [b.pk, c.pk, a.pk]


def test_staff_change_priority_and_bad_input_gets_a_message(staff_client, make_experiment):
    exp = make_experiment()
    post(staff_client, "priority", exp.pk, priority="7")
    assert Experiment.objects.get(pk=exp.pk).priority == 7
    response = post(staff_client, "priority", exp.pk, priority="lots")
    assert response.status_code == 200 and "whole number" in " ".join(messages_of(response))


def test_moving_a_run_that_just_started_says_so_and_changes_nothing(staff_client, make_experiment):
    exp = make_experiment(name="quick")
    other = make_experiment(name="other")
    queue.claim_next("default", "w1")
    before = Experiment.objects.get(pk=exp.pk)
    for name, data in (("top", {}), ("ahead", {"other": other.pk}), ("priority", {"priority": "3"})):
        response = post(staff_client, name, exp.pk, **data)
        assert response.status_code == 200 and "is claimed now" in " ".join(messages_of(response))
    after = Experiment.objects.get(pk=exp.pk)
    assert (after.status, after.priority, after.position) == (S.CLAIMED, before.priority, before.position)


def test_cancelling_a_finished_run_says_so(staff_client, make_experiment):
    exp = make_experiment(status=S.SUCCEEDED)
    response = post(staff_client, "cancel", exp.pk)
    assert "Nothing to cancel" in " ".join(messages_of(response))
    assert Experiment.objects.get(pk=exp.pk).status == S.SUCCEEDED


def test_cancel_ends_a_queued_run_and_flags_a_running_one(staff_client, make_experiment):
    queued = make_experiment(name="q")
    running = make_experiment(name="r", status=S.RUNNING)
    post(staff_client, "cancel", queued.pk)
    post(staff_client, "cancel", running.pk)
    assert Experiment.objects.get(pk=queued.pk).status == S.CANCELLED
    running.refresh_from_db()
    assert running.status == S.RUNNING and running.cancel_requested and running.cancel_requested_at


def test_members_cancel_their_own_runs_only(client, make_experiment, alice, bob, charlie):
    mine = make_experiment(name="mine")
    client.force_login(bob)
    assert client.post(reverse("gpuqueue:cancel", args=[mine.pk])).status_code == 403
    client.force_login(charlie)
    assert client.post(reverse("gpuqueue:cancel", args=[mine.pk])).status_code == 404
    client.force_login(alice)
    post(client, "cancel", mine.pk)
    assert Experiment.objects.get(pk=mine.pk).status == S.CANCELLED


def test_staff_requeue_a_failed_run_with_fresh_attempts(staff_client, make_experiment):
    failed = make_experiment(status=S.FAILED, attempts=3, error="boom")
    post(staff_client, "requeue", failed.pk)
    failed.refresh_from_db()
    assert failed.status == S.QUEUED and failed.attempts == 0 and failed.error == ""
    response = post(staff_client, "requeue", failed.pk)
    assert "is queued now" in " ".join(messages_of(response))


def test_staff_pause_the_queue_and_a_pool(staff_client, make_experiment):
    post(staff_client, "pause", paused="1")
    assert QueueSwitch.is_paused()
    post(staff_client, "pause", paused="0")
    post(staff_client, "pause", paused="1", pool="a100")
    assert not QueueSwitch.is_paused() and Pool.objects.get(name="a100").paused


def test_staff_drain_a_worker_and_set_a_team_limit(staff_client, acme):
    worker = Worker.objects.create(name="gpu0@h", host="h", pools=["default"])
    post(staff_client, "worker_mode", worker.pk, mode="draining")
    assert Worker.objects.get(pk=worker.pk).mode == Worker.Mode.DRAINING
    post(staff_client, "team_limit", acme.pk, max_running="2")
    assert Team.objects.get(pk=acme.pk).max_running == 2
    response = post(staff_client, "team_limit", acme.pk, max_running="-1")
    assert "whole number" in " ".join(messages_of(response))


def test_the_workers_page_lists_devices_and_states_but_hides_other_teams_runs(
        charlie_client, make_experiment):
    Worker.objects.create(name="gpu0@h", host="h", device="cuda", cuda_index=0, device_name="NVIDIA H100",
                          memory_total_mb=81920, memory_used_mb=1024, utilization=55)
    make_experiment(name="secret-run", status=S.RUNNING, worker_name="gpu0@h")
    body = charlie_client.get(reverse("gpuqueue:workers")).content.decode()
    assert "NVIDIA H100" in body and "busy" in body and "55 %" in body
    assert "secret-run" not in body and "another team" in body


@pytest.mark.parametrize("other", ["", "abc", "99999999999999999999999", "１"])
def test_moving_ahead_of_a_bogus_target_gets_a_message_not_a_500(staff_client, make_experiment, other):
    exp = make_experiment()
    response = post(staff_client, "ahead", exp.pk, other=other)
    assert response.status_code == 200 and "Pick an experiment" in " ".join(messages_of(response))


def test_user_text_on_the_queue_page_is_escaped(staff_client, make_experiment):
    make_experiment(name="<script>alert(1)</script>")
    body = staff_client.get(reverse("gpuqueue:board")).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_one_experiments_place_is_counted_as_the_board_orders_the_queue(make_experiment):
    """status.json counts the rows ahead (one COUNT); it must agree with the board's full ordering."""
    from django.utils import timezone

    from webapp.gpuqueue.board import queue_rows

    same_time = timezone.now()
    made = [make_experiment(name=f"r{i}", priority=priority, position=position, pool=pool)
            for i, (priority, position, pool) in enumerate([(0, 5.0, "default"), (2, 9.0, "default"), (0, 1.0, "default"),
                                                            (2, 9.0, "default"), (0, 1.0, "big"), (1, 3.0, "big")])]
    Experiment.objects.filter(pk__in=[e.pk for e in made[1:4]]).update(created_at=same_time)  # ties go to the id
    make_experiment(name="running", status=S.RUNNING, worker_name="gpu0@h")
    board = {row.experiment.pk: row.position for row in queue_rows()}
    counted = {e.pk: queue.place_in_queue(Experiment.objects.get(pk=e.pk)) for e in made}
    assert counted == {pk: place for pk, place in board.items() if place is not None}
    assert sorted(counted[e.pk] for e in made[:4]) == [1, 2, 3, 4] and counted[made[5].pk] == 1
