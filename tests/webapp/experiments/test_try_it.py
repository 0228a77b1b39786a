""""Try it": POST /experiments/<pk>/predict.json runs the exported student and the teacher on typed texts."""

from __future__ import annotations

import json

import pytest

from tests.webapp.factories import LABELS
from webapp.experiments import artifacts
from webapp.experiments.models import Experiment

S = Experiment.Status


@pytest.fixture(autouse=True)
def _fresh_cache():
    artifacts.MODELS.clear()
    yield
    artifacts.MODELS.clear()


def predict(client, experiment, body):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/experiments/{experiment.pk}/predict.json", data, content_type="application/json")


def test_it_shows_teacher_and_student_predictions_with_probabilities(alice_client, finished_experiment):
    response = predict(alice_client, finished_experiment, {"texts": ["stocks rally again", "", "team wins"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["labels"] == LABELS
    assert [p["text"] for p in body["predictions"]] == ["stocks rally again", "team wins"]
    for p in body["predictions"]:
        for who in ("student", "teacher"):
            probs = p[who]["probabilities"]
            assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-3
            assert p[who]["label"] == LABELS[probs.index(max(probs))]
        assert p["agree"] == (p["student"]["label"] == p["teacher"]["label"])


def test_loaded_models_are_cached_between_calls(alice_client, finished_experiment, monkeypatch):
    predict(alice_client, finished_experiment, {"texts": ["one"]})
    assert len(artifacts.MODELS) == 2  # student and teacher

    def fail(*args, **kwargs):
        raise AssertionError("loaded again")

    monkeypatch.setattr("distill_core.export.load_student", fail)
    monkeypatch.setattr(artifacts, "_load_teacher", fail)
    assert predict(alice_client, finished_experiment, {"texts": ["two"]}).status_code == 200


def test_the_cache_forgets_the_least_recently_used_model():
    cache = artifacts.ModelCache(size=2)
    for key in ("a", "b", "a", "c"):
        cache.get((key,), lambda k=key: k.upper())
    assert list(cache._items) == [("a",), ("c",)]


def test_a_form_post_with_one_text_per_line_works(alice_client, finished_experiment):
    response = alice_client.post(f"/experiments/{finished_experiment.pk}/predict.json",
                                 {"texts": "bank cuts rates\r\nnew laptop"})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


@pytest.mark.parametrize("body, words", [
    ({"texts": []}, "at least one"),
    ({"texts": ["  "]}, "at least one"),
    ({}, "at least one"),
    ({"texts": [f"t{i}" for i in range(21)]}, "At most 20"),
    ({"texts": ["x" * 1001]}, "at most 1,000"),
    ({"texts": [1, 2]}, "list of strings"),
    ({"texts": {"a": "b"}}, "list of strings"),
    ({"texts": ["a\x00b"]}, "NUL"),
    ("not json", "JSON object"),
    (b"\xff\xfe", "JSON object"),
    ("[1]", "at least one"),
])
def test_bad_input_gets_a_clear_message(alice_client, finished_experiment, body, words):
    response = predict(alice_client, finished_experiment, body)
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_a_huge_body_is_refused(alice_client, finished_experiment):
    assert predict(alice_client, finished_experiment, {"texts": ["x" * 100_000]}).status_code == 413


def test_unicode_and_html_come_back_as_data(alice_client, finished_experiment):
    texts = ["<script>alert(1)</script>", "央行降息 🤖", "ñ" * 1000]
    body = predict(alice_client, finished_experiment, {"texts": texts}).json()
    assert [p["text"] for p in body["predictions"]] == texts


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.FAILED, S.CANCELLED])
def test_only_a_succeeded_run_can_be_tried(alice_client, finished_experiment, status):
    Experiment.objects.filter(pk=finished_experiment.pk).update(status=status)
    response = predict(alice_client, finished_experiment, {"texts": ["x"]})
    assert response.status_code == 409 and "finished run" in response.json()["error"]


def test_an_export_outside_the_artifact_root_is_refused(alice_client, finished_experiment, tmp_path):
    for outside in ("/etc", str(tmp_path), f"{finished_experiment.results['export_dir']}/../../../../.."):
        Experiment.objects.filter(pk=finished_experiment.pk).update(
            results={**finished_experiment.results, "export_dir": outside})
        response = predict(alice_client, finished_experiment, {"texts": ["x"]})
        assert response.status_code == 409 and "outside" in response.json()["error"], outside


def test_a_missing_or_broken_export_is_a_409_not_a_500(alice_client, finished_experiment, settings):
    broken = settings.ARTIFACT_ROOT / "broken"
    broken.mkdir(parents=True)
    (broken / "student.json").write_text("{}")
    for export_dir, words in ((str(settings.ARTIFACT_ROOT / "gone"), "no longer on disk"), (str(broken), "loaded")):
        Experiment.objects.filter(pk=finished_experiment.pk).update(
            results={**finished_experiment.results, "export_dir": export_dir})
        response = predict(alice_client, finished_experiment, {"texts": ["x"]})
        assert response.status_code == 409 and words in response.json()["error"]


def test_another_teams_member_gets_404(charlie_client, finished_experiment):
    assert predict(charlie_client, finished_experiment, {"texts": ["x"]}).status_code == 404


def test_it_needs_a_post(alice_client, finished_experiment):
    assert alice_client.get(f"/experiments/{finished_experiment.pk}/predict.json").status_code == 405


def test_the_page_offers_try_it_only_when_the_student_is_ready(alice_client, finished_experiment, make_experiment):
    html = alice_client.get(f"/experiments/{finished_experiment.pk}/").content.decode()
    assert 'id="try-it"' in html and "/static/js/try_it.js" in html
    running = make_experiment(S.RUNNING)
    assert 'id="try-it"' not in alice_client.get(f"/experiments/{running.pk}/").content.decode()


def test_an_export_whose_weights_do_not_fit_is_a_409(alice_client, finished_experiment, student_export):
    manifest = json.loads((student_export / "student.json").read_text())
    manifest["options"]["num_filters"] = 99  # the weights were saved with 8
    (student_export / "student.json").write_text(json.dumps(manifest))
    response = predict(alice_client, finished_experiment, {"texts": ["x"]})
    assert response.status_code == 409 and "could not be loaded" in response.json()["error"]


def test_anonymous_users_are_sent_to_login(client, finished_experiment):
    response = predict(client, finished_experiment, {"texts": ["x"]})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
