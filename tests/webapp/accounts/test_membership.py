"""Team membership guards every page and endpoint; anonymous users are sent to the login page."""

from __future__ import annotations

import pytest

from webapp.experiments.models import Experiment

PAGE_URLS = ["/", "/experiments/new/", "/checkpoints/", "/checkpoints/new/", "/datasets/", "/datasets/new/"]


def object_urls(experiment) -> list[str]:
    e, c, d = experiment.pk, experiment.teacher_id, experiment.dataset_id
    return [
        f"/experiments/{e}/", f"/experiments/{e}/config.json", f"/experiments/{e}/status.json",
        f"/experiments/{e}/metrics.json", f"/experiments/{e}/metrics.json?after=0",
        f"/checkpoints/{c}/", f"/datasets/{d}/",
    ]


def test_charlie_gets_404_for_every_acme_object(charlie_client, experiment):
    for url in object_urls(experiment):
        assert charlie_client.get(url).status_code == 404, url


def test_charlie_cannot_cancel_an_acme_experiment(charlie_client, experiment):
    assert charlie_client.post(f"/experiments/{experiment.pk}/cancel/").status_code == 404
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.QUEUED and not experiment.cancel_requested


def test_charlie_sees_none_of_acme_in_lists_or_menus(charlie_client, experiment):
    for url in ("/", "/checkpoints/", "/datasets/", "/experiments/new/"):
        html = charlie_client.get(url).content.decode()
        for name in (experiment.name, experiment.teacher.name, experiment.dataset.name):
            assert name not in html, (url, name)


def test_a_missing_id_is_the_same_404(charlie_client, experiment):
    assert charlie_client.get("/experiments/999999/").status_code == 404
    assert charlie_client.get("/experiments/999999/status.json").status_code == 404


def test_teammates_see_each_others_objects(client, bob, experiment):
    client.force_login(bob)
    for url in object_urls(experiment):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("url", PAGE_URLS)
def test_anonymous_users_are_sent_to_login_from_pages(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_anonymous_users_are_sent_to_login_from_objects_and_endpoints(client, experiment):
    for url in object_urls(experiment):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    response = client.post(f"/experiments/{experiment.pk}/cancel/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.QUEUED


def test_anonymous_posts_create_nothing(client, acme, checkpoint, dataset):
    client.post("/experiments/new/", {"name": "x", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk})
    client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "path": checkpoint.path})
    assert Experiment.objects.count() == 0
    assert acme.checkpoints.count() == 1
