"""Try it for a language-model run: teacher and student stream their continuations, within bounds, members only."""

from __future__ import annotations

import json

import pytest

from distill_core.lm.testing import make_tiny_lm
from webapp.experiments import artifacts, lm_try_it
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint


@pytest.fixture
def lm_run(acme, alice, teacher_root, settings) -> Experiment:
    teacher = teacher_root / "acme" / "tiny-gpt2"
    if not teacher.is_dir():
        make_tiny_lm(teacher, "gpt2", layers=4)
    checkpoint = Checkpoint.objects.create(team=acme, name="tiny-gpt2", path=str(teacher), info={}, created_by=alice)
    student = settings.ARTIFACT_ROOT / "experiments" / "1" / "student"
    make_tiny_lm(student, "gpt2", layers=2, seed=1)
    artifacts.MODELS.clear()
    return Experiment.objects.create(
        team=acme, owner=alice, name="lm", teacher=checkpoint, status=Experiment.Status.SUCCEEDED,
        config={"kind": "lm_distill", "teacher": {"path": str(teacher)}},
        results={"kind": "lm_distill", "export_dir": str(student), "samples": [{"prompt": "what does the cat ?"}]})


def events(response) -> list[tuple[str, dict]]:
    body = b"".join(response.streaming_content).decode()
    out = []
    for block in body.strip().split("\n\n"):
        name, data = (line.split(": ", 1)[1] for line in block.split("\n"))
        out.append((name, json.loads(data)))
    return out


def generate(client, experiment, **body):
    return client.post(f"/experiments/{experiment.pk}/generate/", json.dumps(body), content_type="application/json")


def test_teacher_and_student_stream_their_continuations_in_turn(alice_client, lm_run):
    response = generate(alice_client, lm_run, prompt="what does the red cat ?", max_new_tokens=5)
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    stream = events(response)
    names = [name for name, _ in stream]
    assert names[-1] == "done" and names[:2] == ["teacher", "student"]
    for model in ("teacher", "student"):
        texts = [data["text"] for name, data in stream if name == model]
        assert 1 <= len(texts) <= 5 and all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert stream[-1][1]["max_new_tokens"] == 5


def test_the_streamed_text_is_the_greedy_continuation(alice_client, lm_run):
    import torch

    from distill_core.lm.evaluate import generate as greedy

    stream = events(generate(alice_client, lm_run, prompt="what does the red cat ?", max_new_tokens=6))
    model, tokenizer = lm_try_it.models(lm_run)[1]
    prompt = torch.tensor(tokenizer("what does the red cat ?")["input_ids"])
    expected = greedy(model, tokenizer, [prompt], torch.device("cpu"), 6)[0]
    assert [d["text"] for n, d in stream if n == "student"][-1] == expected


def test_the_time_bound_stops_generation(alice_client, lm_run, monkeypatch):
    monkeypatch.setattr(lm_try_it, "SECONDS", -1.0)
    stream = events(generate(alice_client, lm_run, prompt="the cat", max_new_tokens=10))
    assert stream == [("done", {"teacher_steps": 0, "student_steps": 0, "max_new_tokens": 10})]


@pytest.mark.parametrize("body,text", [
    ({"prompt": " "}, "Type a prompt"),
    ({"prompt": "x", "max_new_tokens": 65}, "between 1 and 64"),
    ({"prompt": "x", "max_new_tokens": "many"}, "whole number"),
    ({"prompt": "x" * 2001}, "at most 2,000 characters"),
])
def test_bad_requests_are_refused_before_loading_anything(alice_client, lm_run, body, text):
    response = generate(alice_client, lm_run, **body)
    assert response.status_code == 400 and text in response.json()["error"]
    assert len(artifacts.MODELS) == 0


def test_a_model_over_the_web_limit_is_never_loaded(alice_client, lm_run, settings):
    settings.TRY_IT_MAX_MODEL_MB = 0
    response = generate(alice_client, lm_run, prompt="the cat")
    assert response.status_code == 409 and "at most 0 MB are loaded in a web request" in response.json()["error"]
    assert len(artifacts.MODELS) == 0


def test_another_team_gets_404(charlie_client, lm_run):
    assert generate(charlie_client, lm_run, prompt="the cat").status_code == 404
    assert len(artifacts.MODELS) == 0


def test_a_classification_run_has_no_streaming_generation(alice_client, finished_experiment):
    response = generate(alice_client, finished_experiment, prompt="the cat")
    assert response.status_code == 409 and "language-model runs" in response.json()["error"]


def test_an_unfinished_run_has_nothing_to_try(alice_client, lm_run):
    Experiment.objects.filter(pk=lm_run.pk).update(status=Experiment.Status.RUNNING)
    response = generate(alice_client, lm_run, prompt="the cat")
    assert response.status_code == 409 and "Only a finished run" in response.json()["error"]


def test_the_page_offers_streaming_try_it_with_our_own_script(alice_client, lm_run):
    html = alice_client.get(f"/experiments/{lm_run.pk}/").content.decode()
    assert 'id="lm-try-it-form"' in html and "/static/js/lm_try_it.js" in html
    assert 'id="try-it-form"' not in html and "what does the cat ?" in html
