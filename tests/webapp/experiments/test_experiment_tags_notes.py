"""Tags and notes, edited inline on the list through POST /experiments/<pk>/annotate.json."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from webapp.experiments.annotations import AnnotationError, clean_tags
from webapp.experiments.models import Tag


def post(client, experiment, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/experiments/{experiment.pk}/annotate.json", data, content_type="application/json", **extra)


def test_a_member_sets_tags_and_notes(alice_client, experiment):
    response = post(alice_client, experiment, {"tags": ["Baseline", "t=4", "baseline", " "], "notes": "  T=4 helps\n"})
    assert response.status_code == 200
    assert response.json() == {"tags": ["baseline", "t=4"], "notes": "T=4 helps"}
    experiment.refresh_from_db()
    assert experiment.notes == "T=4 helps"
    assert sorted(t.name for t in experiment.tags.all()) == ["baseline", "t=4"]


def test_tags_are_shared_within_the_team_and_unused_ones_disappear(alice_client, make_experiment):
    a, b = make_experiment(name="a"), make_experiment(name="b")
    post(alice_client, a, {"tags": ["baseline", "old"]})
    post(alice_client, b, {"tags": ["baseline"]})
    assert Tag.objects.filter(name="baseline").count() == 1
    post(alice_client, a, {"tags": ["new"]})
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["baseline", "new"]


def test_notes_alone_leave_the_tags_alone(alice_client, experiment):
    post(alice_client, experiment, {"tags": ["keep"]})
    response = post(alice_client, experiment, {"notes": "only notes"})
    assert response.json() == {"tags": ["keep"], "notes": "only notes"}


@pytest.mark.parametrize("body, field, words", [
    ({"tags": ["has space"]}, "tags", "not a valid tag"),
    ({"tags": ["<script>"]}, "tags", "not a valid tag"),
    ({"tags": ["x" * 41]}, "tags", "at most 40"),
    ({"tags": [f"t{i}" for i in range(13)]}, "tags", "At most 12 tags"),
    ({"tags": [1, 2]}, "tags", "list of words"),
    ({"tags": {"a": 1}}, "tags", "list of words"),
    ({"notes": "n" * 2001}, "notes", "at most 2,000"),
    ({"notes": 12}, "notes", "must be text"),
    ({"notes": "a\x00b"}, "notes", "NUL"),
])
def test_invalid_tags_and_notes_get_a_message_on_their_field(alice_client, experiment, body, field, words):
    response = post(alice_client, experiment, body)
    assert response.status_code == 400
    assert response.json()["field"] == field and words in response.json()["error"]
    experiment.refresh_from_db()
    assert experiment.notes == "" and not experiment.tags.exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "{}", '{"other": 1}', b"\xff\xfe", "null", "1e999999"])
def test_malformed_bodies_get_a_clear_error(alice_client, experiment, body):
    response = post(alice_client, experiment, body)
    assert response.status_code == 400 and "error" in response.json()


def test_a_huge_body_is_refused(alice_client, experiment):
    response = post(alice_client, experiment, {"notes": "x" * 100_000})
    assert response.status_code == 413


def test_unicode_tags_are_welcome(alice_client, experiment):
    assert clean_tags(["蒸馏", "ñandú-2", "v1.2"]) == ["蒸馏", "ñandú-2", "v1.2"]
    with pytest.raises(AnnotationError):
        clean_tags(["_hidden"])
    assert post(alice_client, experiment, {"tags": ["蒸馏"]}).json()["tags"] == ["蒸馏"]


def test_html_in_notes_is_shown_as_text_on_the_list(alice_client, experiment):
    post(alice_client, experiment, {"notes": "<img src=x onerror=alert(1)> & <b>bold</b>"})
    html = alice_client.get("/").content.decode()
    assert "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_another_teams_member_gets_404(charlie_client, experiment):
    assert post(charlie_client, experiment, {"notes": "mine now"}).status_code == 404
    experiment.refresh_from_db()
    assert experiment.notes == ""


def test_a_missing_experiment_gets_404(alice_client, experiment):
    response = alice_client.post("/experiments/999999999/annotate.json", "{}", content_type="application/json")
    assert response.status_code == 404


def test_it_needs_a_post_and_a_login(alice_client, client, experiment):
    assert alice_client.get(f"/experiments/{experiment.pk}/annotate.json").status_code == 405
    alice_client.logout()
    assert post(client, experiment, {"notes": "x"}).status_code == 302


def test_it_needs_the_csrf_token(alice, experiment):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post(client, experiment, {"notes": "forged"}).status_code == 403
    html = client.get("/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert post(client, experiment, {"notes": "real"}, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_the_list_carries_an_edit_button_per_row(alice_client, experiment):
    html = alice_client.get("/").content.decode()
    assert f'data-annotate-url="/experiments/{experiment.pk}/annotate.json"' in html
    assert "data-edit" in html and 'id="annotate-editor"' in html
