"""Teachers registered by Hugging Face id: a pending row per team, resolved by the worker at run start.

No network: a stand-in Hub on 127.0.0.1 (tests/hub_server.py) serves the tiny teacher.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import wait_for
from tests.hub_server import FakeHub
from webapp.api.models import ApiToken
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.registry.models import Checkpoint
from workers.tasks import execute

S = Experiment.Status


@pytest.fixture
def fake_hub(tmp_path, teacher_dir, monkeypatch, settings):
    server = FakeHub(tmp_path / "downloads.txt").start()
    server.commit = server.add("org/tiny-bert", teacher_dir)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    settings.HF_CACHE = tmp_path / "hf-cache"
    yield server
    server.stop()


def bearer(user) -> Client:
    _, secret = ApiToken.issue(user, "tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def hub_checkpoint(team, hub_id="org/tiny-bert", revision="", name="tiny-by-id") -> Checkpoint:
    return Checkpoint.objects.create(team=team, name=name, path="", hub_id=hub_id, hub_revision=revision)


def submit(client, team, checkpoint, dataset, name: str) -> None:
    response = client.post("/experiments/new/", {
        "name": name, "team": team.pk, "teacher": checkpoint.pk, "dataset": dataset.pk, "student_type": "textcnn",
        "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8", "learning_rate": "0.005",
        "max_length": "16"})
    assert response.status_code == 302, response.context["form"].errors


def run_queued(experiment: Experiment) -> Experiment:
    assert queue.claim_next("default", "w1", "token-1") == experiment.pk
    execute(experiment.pk, "token-1")
    experiment.refresh_from_db()
    return experiment


def test_registering_an_id_stores_a_pending_row_and_downloads_nothing(alice_client, acme, fake_hub, settings):
    response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "tiny", "hub_id": "org/tiny-bert@main"})
    checkpoint = Checkpoint.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/checkpoints/{checkpoint.pk}/"
    assert (checkpoint.hub_id, checkpoint.hub_revision, checkpoint.hub_commit, checkpoint.path) == \
        ("org/tiny-bert", "main", "", "")
    assert checkpoint.source == "hub:org/tiny-bert@main" and checkpoint.info == {}
    assert fake_hub.requests() == [] and not settings.HF_CACHE.exists()
    html = alice_client.get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    assert "org/tiny-bert" in html and "not resolved yet" in html


def test_a_malformed_id_or_an_id_with_a_path_is_refused_on_its_field(alice_client, acme, teacher_dir):
    response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "hub_id": "org//x"})
    assert "is not a Hugging Face model id" in response.context["form"].errors["hub_id"][0]
    response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "hub_id": "org/x",
                                                       "path": str(teacher_dir)})
    assert "not both" in response.context["form"].errors["hub_id"][0]
    assert not Checkpoint.objects.exists()


def test_an_id_registered_through_the_api_is_its_teams_alone(alice, charlie, acme, other, fake_hub):
    response = bearer(alice).post("/api/checkpoints/", {"team": acme.pk, "name": "tiny", "hub_id": "org/tiny-bert"},
                                  content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["hub_id"], body["hub_revision"], body["hub_commit"], body["path"]) == ("org/tiny-bert", None, None, "")
    charlie_api = bearer(charlie)
    assert charlie_api.get("/api/checkpoints/").json()["results"] == []
    assert charlie_api.get(f"/api/checkpoints/{body['id']}/").status_code == 404
    refused = charlie_api.post("/api/experiments/", {"team": other.pk, "name": "x", "teacher": body["id"],
                                                     "dataset": 1}, content_type="application/json")
    assert refused.status_code == 400 and "teacher" in refused.json()["fields"]
    assert fake_hub.requests() == []


def test_a_run_resolves_the_id_and_the_checkpoint_page_shows_the_commit(transactional_db, alice_client, acme, other,
                                                                       dataset, fake_hub, teacher_info, settings):
    checkpoint = hub_checkpoint(acme)
    others = hub_checkpoint(other)  # the same id registered by another team: a row of its own
    response = alice_client.post("/experiments/new/", {
        "name": "by id", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk, "student_type": "textcnn",
        "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8", "learning_rate": "0.005", "max_length": "16"})
    assert response.status_code == 302, response.context["form"].errors
    experiment = Experiment.objects.get()
    assert experiment.config["teacher"]["path"] == "hub:org/tiny-bert"

    experiment = run_queued(experiment)
    assert experiment.status == S.SUCCEEDED, experiment.error
    checkpoint.refresh_from_db()
    others.refresh_from_db()
    assert checkpoint.hub_commit == fake_hub.commit and checkpoint.info == teacher_info
    assert others.hub_commit == "" and others.info == {}
    assert f"Teacher hub:org/tiny-bert is commit {fake_hub.commit}" in experiment.log_tail
    html = alice_client.get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    assert fake_hub.commit in html and "not resolved yet" not in html
    # "Try it" finds the cached snapshot without asking the Hub.
    requests = len(fake_hub.requests())
    assert artifacts.teacher_dir(experiment) == settings.HF_CACHE / "models--org--tiny-bert" / "snapshots" / \
        fake_hub.commit
    assert len(fake_hub.requests()) == requests


def test_an_unknown_id_fails_the_run_with_its_reason(transactional_db, alice_client, acme, dataset, fake_hub):
    checkpoint = hub_checkpoint(acme, hub_id="org/missing")
    response = alice_client.post("/experiments/new/", {
        "name": "missing", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
        "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8",
        "learning_rate": "0.005", "max_length": "16"})
    assert response.status_code == 302, response.context["form"].errors
    experiment = run_queued(Experiment.objects.get())
    assert experiment.status == S.FAILED
    assert "hub:org/missing: no such model on the Hugging Face Hub" in experiment.error
    checkpoint.refresh_from_db()
    assert checkpoint.hub_commit == ""


def test_a_recorded_label_count_is_checked_before_the_next_run_is_queued(alice_client, acme, dataset, teacher_info):
    checkpoint = hub_checkpoint(acme)
    Checkpoint.objects.filter(pk=checkpoint.pk).update(hub_commit="a" * 40, info={**teacher_info, "num_labels": 5})
    response = alice_client.post("/experiments/new/", {
        "name": "x", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk, "student_type": "textcnn",
        "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8", "learning_rate": "0.005",
        "max_length": "16"})
    assert "predicts 5 labels but the dataset has 3" in response.context["form"].errors["teacher"][0]


@pytest.mark.worker
def test_two_workers_running_one_hub_teacher_at_once_download_it_once(worker_process, alice_client, acme, dataset,
                                                                     fake_hub, teacher_dir, settings, tmp_path):
    from webapp.gpuqueue.models import Worker
    from workers.dispatch import wake_workers

    fake_hub.delay_s = 0.5  # per file: the second worker asks while the first is still downloading
    env = {"HF_ENDPOINT": fake_hub.url, "DISTILLERY_HF_CACHE": str(settings.HF_CACHE),
           "DISTILLERY_ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT)}
    workers = [worker_process(name=name, env=env) for name in ("a", "b")]
    wait_for(lambda: Worker.objects.filter(name__regex=r"^[ab]@").count() == 2, timeout=60,
             message=lambda: "both workers to register\n" + "\n".join(w.log()[-2000:] for w in workers))
    checkpoint = hub_checkpoint(acme)
    for name in ("first", "second"):
        submit(alice_client, acme, checkpoint, dataset, name)
    wake_workers("default")

    def finished():
        return all(e.is_finished for e in Experiment.objects.all())

    wait_for(finished, timeout=240, interval=1,
             message=lambda: "both runs to finish\n" + "\n".join(w.log()[-3000:] for w in workers))
    runs = list(Experiment.objects.all())
    assert [e.status for e in runs] == [S.SUCCEEDED] * 2, [e.error for e in runs]
    assert {e.worker_name.split("@")[0] for e in runs} == {"a", "b"}
    files = sum(1 for p in teacher_dir.rglob("*") if p.is_file())
    assert fake_hub.downloads() == files
    assert len([r for r in fake_hub.requests() if r.startswith("HEAD ")]) == files
