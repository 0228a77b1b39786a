"""Hostile JSON bodies on every JSON endpoint: a 4xx with a message on the field, nothing changed.

The REST API (/api/), the list's inline tags/notes and the "Try it" predictions all read JSON
through distill_core.untrusted.loads: NUL characters and unpaired surrogates (which Postgres
refuses), deep nesting (RecursionError) and huge integers (ValueError) are refused up front.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.hostile.checks import assert_json_refused
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment

HUGE = 10**30
SURROGATE = '"\\ud800"'  # a JSON string holding one unpaired surrogate


@pytest.fixture(autouse=True)
def _no_broker(wake):
    """Nothing here may queue; `wake` records wake-ups instead of sending them."""


def post_raw(client, url, body: str | bytes, content_type: str = "application/json"):
    return client.post(url, body, content_type=content_type)


@pytest.mark.parametrize("body, content_type, status, text", [
    ("{not json", "application/json", 400, "Not valid JSON"),
    ("[1, 2]", "application/json", 400, "must be an object"),
    ('"just a string"', "application/json", 400, "must be an object"),
    (" ", "application/json", 400, "Not valid JSON"),
    ('{"epochs": ' + "9" * 5000 + "}", "application/json", 400, "more than 4,300 digits"),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400, "nested too deeply"),
    ('{"name": {"a": ' * 70 + "1" + "}" * 140, "application/json", 400, "nested deeper than 64 levels"),
    ('{"name": NaN}', "application/json", 400, "name: NaN is not a number JSON allows"),
    (b'{"name": "\xff\xfe"}', "application/json", 400, "not UTF-8"),
    ("name=x", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    ("{}", "text/plain", 415, "application/json"),
])
def test_malformed_or_mistyped_bodies_are_refused(api, checkpoint, dataset, unchanged, body, content_type, status,
                                                  text):
    with unchanged():
        response = post_raw(api, "/api/experiments/", body, content_type)
    assert_json_refused(response, status, text)


@pytest.mark.parametrize("changes, field, text", [
    ({"epochs": HUGE}, "epochs", ""), ({"epochs": -3}, "epochs", ""), ({"batch_size": 0}, "batch_size", ""),
    ({"temperature": 1e400}, "temperature", "Infinity is not a number JSON allows"), ({"temperature": -1}, "temperature", ""),
    ({"learning_rate": 1e308}, "learning_rate", ""), ({"max_length": 2**63}, "max_length", ""),
    ({"teacher": HUGE}, "teacher", ""), ({"dataset": -1}, "dataset", ""), ({"team": HUGE}, "team", ""),
    ({"teacher": 1.5}, "teacher", ""), ({"teacher": "abc"}, "teacher", ""), ({"team": "<b>x</b>"}, "team", ""),
    ({"student_type": "<script>"}, "student_type", ""), ({"name": "x" * 5000}, "name", ""),
    ({"name": ["list"]}, "name", ""), ({"alpha": {"nested": 1}}, "alpha", ""), ({"epochs": True}, "epochs", ""),
    ({"surprise": 1}, "surprise", ""),
    ({"name": "a\x00b"}, "name", "name contains a NUL character"),
    ({"name": "a\ud800b"}, "name", "name contains an unpaired surrogate (U+D800)"),
    ({"notes": "\udfff"}, "notes", "unpaired surrogate (U+DFFF)"),
    ({"stages": "\ud800"}, "stages", "unpaired surrogate"),
    ({"stages": '[{"name": "\\ud800", "epochs": 1}]'}, "stages", "stages[0].name contains an unpaired surrogate"),
    ({"stages": '[{"name": "a\\u0000b", "epochs": 1}]'}, "stages", "stages[0].name contains a NUL character"),
    ({"stages": '[{"na\\u0000me": "x"}]'}, "stages", "a key of stages[0] contains a NUL character"),
    ({"stages": "[" * 10_000}, "stages", "The stages: the JSON is nested too deeply"),
    ({"stages": "[" * 100 + "]" * 100}, "stages", "nested deeper than 64 levels"),
    ({"stages": '[{"epochs": ' + "9" * 5000 + "}]"}, "stages", "more than 4,300 digits"),
    ({"match_rows": "[" * 10_000, "matches_mode": "rows"}, "match_rows", "nested too deeply"),
    ({"match_rows": '[{"feature": "\\ud800"}]', "matches_mode": "rows"}, "match_rows", "unpaired surrogate"),
    ({"ensemble": "\x00 1"}, "ensemble", "NUL"),
])
def test_hostile_experiment_fields_are_refused_on_their_field(api, checkpoint, dataset, unchanged, changes, field,
                                                              text):
    body = {"name": "sweep", "teacher": checkpoint.pk, "dataset": dataset.pk, **changes}
    with unchanged():
        response = post_raw(api, "/api/experiments/", json.dumps(body))
    assert_json_refused(response, 400, text, field=field)


def test_unicode_and_html_names_are_stored_as_given(api, checkpoint, dataset):
    name = "蒸馏 <img src=x onerror=alert(1)> 🚀 \U0001F600"
    response = post_raw(api, "/api/experiments/", json.dumps({"name": name, "teacher": checkpoint.pk,
                                                              "dataset": dataset.pk}))
    assert response.status_code == 201 and response.json()["name"] == name


@pytest.mark.parametrize("body, field, text", [
    ({"name": "x", "path": "/tmp/a\x00b"}, "path", "NUL"), ({"name": "x", "path": "relative/dir"}, "path", "absolute"),
    ({"name": "x", "path": "/" + "a" * 5000}, "path", "at most 1000"), ({"name": "x"}, "path", "required"),
    ({"name": "x", "path": ["/"]}, "path", "not a list"), ({"name": "x", "path": "/tmp", "team": -1}, "team", "id"),
    ({"name": "\ud800", "path": "/tmp"}, "name", "name contains an unpaired surrogate"),
    ({"name": "x", "path": "/tmp/\ud800"}, "path", "path contains an unpaired surrogate"),
    ({"name": "x", "path": "/tmp/\udc80"}, "path", "path contains an unpaired surrogate (U+DC80)"),
])
def test_hostile_checkpoint_registrations_are_refused(api, acme, unchanged, body, field, text):
    with unchanged():
        response = post_raw(api, "/api/checkpoints/", json.dumps(body))
    assert_json_refused(response, 400, text, field=field)


def test_a_checkpoint_archive_that_is_not_an_archive_is_refused(api, acme, unchanged):
    with unchanged():
        response = api.post("/api/checkpoints/", {"name": "<i>x</i>",
                                                  "archive": SimpleUploadedFile("x.zip", b"<html>")})
    assert_json_refused(response, 400, "not a .zip or .tar.gz archive", field="archive")


def test_a_malformed_multipart_body_is_refused(api, acme, unchanged):
    with unchanged():
        assert_json_refused(post_raw(api, "/api/datasets/", b"--nope\r\ngarbage", "multipart/form-data; boundary=zzz"),
                            400, "")
        assert_json_refused(post_raw(api, "/api/checkpoints/", b"garbage", "multipart/form-data"), 400, "")


def test_a_json_body_over_the_request_limit_is_413(api, settings, unchanged):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with unchanged():
        response = post_raw(api, "/api/experiments/", json.dumps({"name": "x" * 5000}))
    assert_json_refused(response, 413, "")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", ["/api/experiments/", "/api/datasets/", "/api/checkpoints/", "/api/schema.json"])
def test_other_methods_are_405(api, unchanged, method, url):
    with unchanged():
        response = getattr(api, method)(url)
    assert_json_refused(response, 405, "not allowed")
    assert response["Allow"]


# --- the page's JSON endpoints (session + CSRF-exempt test client) ------------------------------

@pytest.mark.parametrize("body, field, text", [
    ('{"notes": ' + SURROGATE + "}", "notes", "notes contains an unpaired surrogate"),
    ('{"notes": "a\\u0000b"}', "notes", "notes contains a NUL character"),
    ('{"tags": ["ok", ' + SURROGATE + "]}", "tags", "tags[1] contains an unpaired surrogate"),
    ('{"tags": ["a\\u0000b"]}', "tags", "NUL"),
    ('{"tags": ["<script>"]}', "tags", "is not a valid tag"),
    ("[" * 15_000, None, "nested too deeply"),
    ('{"notes": ' + "1" * 5000 + "}", None, "more than 4,300 digits"),
    ("[" * 20_000, None, "too large (at most 16 KB)"),
    ("{nope", None, "Not valid JSON"),
])
def test_hostile_notes_and_tags_are_refused(alice_client, experiment, unchanged, body, field, text):
    with unchanged():
        response = post_raw(alice_client, f"/experiments/{experiment.pk}/annotate.json", body)
    assert response.status_code == (413 if "too large" in text else 400), response.content
    assert text in response.json()["error"] and response.json().get("field") == field
    experiment.refresh_from_db()
    assert experiment.notes == "" and not experiment.tags.exists()


@pytest.mark.parametrize("body, text", [
    ('{"texts": [' + SURROGATE + "]}", "texts[0] contains an unpaired surrogate"),
    ('{"texts": ["a\\u0000b"]}', "texts[0] contains a NUL character"),
    ("[" * 30_000, "nested too deeply"),
    ('{"texts": ' + "[" * 100 + "]" * 100 + "}", "nested deeper than 64 levels"),
    ("{nope", "not valid JSON"),
])
def test_hostile_predict_bodies_are_refused(alice_client, finished_experiment, unchanged, body, text):
    artifacts.MODELS.clear()
    with unchanged():
        response = post_raw(alice_client, f"/experiments/{finished_experiment.pk}/predict.json", body)
    assert response.status_code == 400, response.content
    assert text in response.json()["error"]
    assert not artifacts.MODELS._items, "nothing was loaded for a refused request"


def test_no_experiment_was_queued_by_any_refusal(api, checkpoint, dataset, wake):
    post_raw(api, "/api/experiments/", json.dumps({"name": "a\ud800", "teacher": checkpoint.pk,
                                                   "dataset": dataset.pk}))
    assert Experiment.objects.count() == 0 and wake == []
