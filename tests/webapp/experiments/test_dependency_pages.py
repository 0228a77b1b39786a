"""Pages show dependencies: "waits for #1 (…)" on the waiting run, "needed by #2 (…)" on the other.

A checkpoint that a queued run is still training says so, and a run created with it waits for it.
"""

from __future__ import annotations

import pytest

from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint

S = Experiment.Status


@pytest.fixture
def teacher_run(make_experiment) -> Experiment:
    return make_experiment(name="training the demo teacher")


@pytest.fixture
def waiting(make_experiment, teacher_run) -> Experiment:
    return make_experiment(name="demo distillation", depends_on=teacher_run)


@pytest.fixture
def pending_teacher(acme, alice, teacher_run, teacher_info, tmp_path) -> Checkpoint:
    return Checkpoint.objects.create(team=acme, name="being trained", path=str(tmp_path / "new"), info=teacher_info,
                                     created_by=alice, trained_by=teacher_run)


def test_the_waiting_runs_page_names_the_run_it_waits_for(alice_client, teacher_run, waiting):
    page = alice_client.get(f"/experiments/{waiting.pk}/").content.decode()
    assert f"waits for <a href=\"/experiments/{teacher_run.pk}/\">#{teacher_run.pk} (training the demo teacher)</a>" \
        in page
    note = alice_client.get(f"/experiments/{waiting.pk}/status.json").json()["queue"]["note"]
    assert note == f"waits for #{teacher_run.pk} (training the demo teacher)"


def test_the_dependencys_page_names_the_runs_that_need_it(alice_client, teacher_run, waiting):
    page = alice_client.get(f"/experiments/{teacher_run.pk}/").content.decode()
    assert f"needed by <a href=\"/experiments/{waiting.pk}/\">#{waiting.pk} (demo distillation)</a>" in page


def test_once_the_dependency_succeeded_the_page_no_longer_says_it_waits(alice_client, teacher_run, waiting):
    Experiment.objects.filter(pk=teacher_run.pk).update(status=S.SUCCEEDED)
    page = alice_client.get(f"/experiments/{waiting.pk}/").content.decode()
    assert "waits for" not in page and f"after <a href=\"/experiments/{teacher_run.pk}/\">" in page


def test_the_queue_board_says_what_a_run_waits_for(client, teacher_run, waiting, django_user_model):
    staff = django_user_model.objects.create_user("root", password="pw", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert f"waits for #{teacher_run.pk} (training the demo teacher)" in client.get("/queue/").content.decode()


def test_a_checkpoint_still_being_trained_says_it_is_not_ready(alice_client, pending_teacher, teacher_run):
    page = alice_client.get(f"/checkpoints/{pending_teacher.pk}/").content.decode()
    assert "Not ready yet" in page and f"#{teacher_run.pk} (training the demo teacher)" in page
    Experiment.objects.filter(pk=teacher_run.pk).update(status=S.SUCCEEDED)
    page = alice_client.get(f"/checkpoints/{pending_teacher.pk}/").content.decode()
    assert "Not ready yet" not in page and "trained by" in page


def test_a_run_created_with_a_teacher_still_being_trained_waits_for_it(alice_client, form_data, pending_teacher,
                                                                       teacher_run, wake):
    response = alice_client.post("/experiments/new/", {**form_data, "teacher": pending_teacher.pk})
    assert response.status_code == 302
    created = Experiment.objects.exclude(pk=teacher_run.pk).get()
    assert created.depends_on == teacher_run and created.teacher == pending_teacher


def test_cancelling_the_queued_dependency_on_its_page_cancels_the_waiting_run(alice_client, teacher_run, waiting):
    alice_client.post(f"/experiments/{teacher_run.pk}/cancel/")
    waiting.refresh_from_db()
    assert waiting.status == S.CANCELLED and f"#{teacher_run.pk} (training the demo teacher)" in waiting.error


def test_a_teacher_training_runs_page_says_what_it_trains(alice_client, make_experiment):
    run = make_experiment(name="training the demo teacher")
    run.config = {**run.config, "kind": "finetune_teacher"}
    run.save(update_fields=["config"])
    page = alice_client.get(f"/experiments/{run.pk}/").content.decode()
    assert "Fine-tunes the teacher" in page and "TextCNN</b> student" not in page
