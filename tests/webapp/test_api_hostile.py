"""Hostile input on every API endpoint gets a 4xx JSON error with a message, never a 500."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.experiments.models import Checkpoint, Dataset, Experiment

HUGE = 10**30


@pytest.fixture(autouse=True)
def wake():
    with mock.patch("workers.dispatch.wake_workers") as wake:
        yield wake


def assert_4xx(response, *, status: int | None = None, text: str = ""):
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if status:
        assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"] and isinstance(body["fields"], dict)
    assert text in body["error"] + json.dumps(body["fields"], ensure_ascii=False)


def post_raw(client, url, body: str | bytes, content_type: str = "application/json"):
    return client.post(url, body, content_type=content_type)


@pytest.mark.parametrize("body, content_type, status, text", [
    ("{not json", "application/json", 400, "Malformed JSON"),
    ("[1, 2]", "application/json", 400, "must be an object"),
    ('"just a string"', "application/json", 400, "must be an object"),
    (" ", "application/json", 400, "Malformed JSON"),
    ('{"epochs": ' + "9" * 5000 + "}", "application/json", 400, "Malformed JSON"),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400, ""),
    (b'{"name": "\xff\xfe"}', "application/json", 400, "not UTF-8"),
    ("name=x", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    ("{}", "text/plain", 415, "application/json"),
])
def test_malformed_or_mistyped_bodies_are_refused(api, body, content_type, status, text):
    assert_4xx(post_raw(api, "/api/experiments/", body, content_type), status=status, text=text)


@pytest.mark.parametrize("changes, field", [
    ({"epochs": HUGE}, "epochs"), ({"epochs": -3}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"temperature": 1e400}, "temperature"), ({"temperature": -1}, "temperature"),
    ({"learning_rate": 1e308}, "learning_rate"), ({"max_length": 2**63}, "max_length"),
    ({"teacher": HUGE}, "teacher"), ({"dataset": -1}, "dataset"), ({"team": HUGE}, "team"),
    ({"teacher": 1.5}, "teacher"), ({"teacher": "abc"}, "teacher"), ({"team": "<b>x</b>"}, "team"),
    ({"student_type": "<script>"}, "student_type"), ({"name": "x" * 5000}, "name"), ({"name": "a\x00b"}, "name"),
    ({"name": ["list"]}, "name"), ({"alpha": {"nested": 1}}, "alpha"), ({"epochs": True}, "epochs"),
    ({"surprise": 1}, "surprise"),
])
def test_hostile_experiment_fields_are_refused_on_their_field(api, checkpoint, dataset, changes, field):
    body = {"name": "sweep", "teacher": checkpoint.pk, "dataset": dataset.pk, **changes}
    response = post_raw(api, "/api/experiments/", json.dumps(body))
    assert_4xx(response, status=400)
    assert field in response.json()["fields"], response.json()
    assert Experiment.objects.count() == 0


def test_unicode_and_html_names_are_stored_as_given(api, checkpoint, dataset):
    name = "蒸馏 <img src=x onerror=alert(1)> 🚀"
    response = post_raw(api, "/api/experiments/", json.dumps({"name": name, "teacher": checkpoint.pk,
                                                              "dataset": dataset.pk}))
    assert response.status_code == 201 and response.json()["name"] == name


@pytest.mark.parametrize("url", [
    "/api/experiments/", "/api/datasets/", "/api/checkpoints/",
])
@pytest.mark.parametrize("query, text", [
    ({"limit": -1}, "limit must be between"), ({"limit": HUGE}, "limit must be an integer"),
    ({"offset": "abc"}, "offset must be an integer"), ({"limit": "1e3"}, "limit must be an integer"),
])
def test_bad_paging_is_refused(api, url, query, text):
    assert_4xx(api.get(url, query), status=400, text=text)


def test_an_unknown_status_filter_is_refused(api):
    assert_4xx(api.get("/api/experiments/", {"status": "<script>"}), status=400, text="status must be one of")


@pytest.mark.parametrize("suffix", ["", "metrics/", "results/", "cancel/"])
@pytest.mark.parametrize("pk", [HUGE, 2**63, 0])
def test_ids_out_of_range_are_not_found(api, suffix, pk):
    method = api.post if suffix == "cancel/" else api.get
    assert_4xx(method(f"/api/experiments/{pk}/{suffix}"), status=404)


@pytest.mark.parametrize("url", ["/api/datasets/{}/", "/api/checkpoints/{}/"])
def test_registry_ids_out_of_range_are_not_found(api, url):
    assert_4xx(api.get(url.format(HUGE)), status=404)


@pytest.mark.parametrize("query", [
    {"from": HUGE}, {"to": "-1"}, {"after": "1e5"}, {"points": "☃"}, {"from": 5, "to": 4}, {"key": ["k"] * 60},
])
def test_hostile_metric_parameters_are_refused(api, experiment, query):
    assert_4xx(api.get(f"/api/experiments/{experiment.pk}/metrics/", query), status=400)


def test_a_json_body_over_the_request_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert_4xx(post_raw(api, "/api/experiments/", json.dumps({"name": "x" * 5000})), status=413)


def test_a_unicode_metric_key_is_just_absent(api, experiment):
    body = api.get(f"/api/experiments/{experiment.pk}/metrics/", {"key": "损失/<b>"}).json()
    assert body["series"] == {}


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", ["/api/experiments/", "/api/datasets/", "/api/checkpoints/", "/api/schema.json"])
def test_other_methods_are_405(api, method, url):
    response = getattr(api, method)(url)
    assert_4xx(response, status=405, text="not allowed")
    assert response["Allow"]


@pytest.mark.parametrize("fields, text", [
    ({"name": "x"}, "train_file"),
    ({"name": "<b>x</b>", "team": str(HUGE), "train_file": b"a\tb\n"}, "team"),
    ({"name": "x", "train_file": b"\x00\xff\xfe binary"}, "train_file"),
    ({"name": "x", "format": "exe", "train_file": b"a\tb\n"}, "format"),
    ({"name": "x" * 500, "train_file": b"a\tb\n"}, "name"),
])
def test_hostile_dataset_uploads_are_refused(api, acme, fields, text):
    data = {k: SimpleUploadedFile("f.tsv", v) if isinstance(v, bytes) else v for k, v in fields.items()}
    response = api.post("/api/datasets/", data)
    assert_4xx(response, status=400, text=text)
    assert Dataset.objects.count() == 0


def test_a_malformed_multipart_body_is_refused(api, acme):
    response = post_raw(api, "/api/datasets/", b"--nope\r\ngarbage", "multipart/form-data; boundary=zzz")
    assert_4xx(response)
    response = post_raw(api, "/api/checkpoints/", b"garbage", "multipart/form-data")
    assert_4xx(response)


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "path": "/tmp/a\x00b"}, "path"), ({"name": "x", "path": "relative/dir"}, "path"),
    ({"name": "x", "path": "/" + "a" * 5000}, "path"), ({"name": "x"}, "path"),
    ({"name": "x", "path": ["/"]}, "path"), ({"name": "x", "path": "/tmp", "team": -1}, "team"),
])
def test_hostile_checkpoint_registrations_are_refused(api, acme, body, field):
    response = post_raw(api, "/api/checkpoints/", json.dumps(body))
    assert_4xx(response, status=400)
    assert field in response.json()["fields"]
    assert Checkpoint.objects.count() == 0


def test_a_checkpoint_archive_that_is_not_an_archive_is_refused(api, acme):
    response = api.post("/api/checkpoints/", {"name": "<i>x</i>", "archive": SimpleUploadedFile("x.zip", b"<html>")})
    assert_4xx(response, status=400, text="not a .zip or .tar.gz archive")
