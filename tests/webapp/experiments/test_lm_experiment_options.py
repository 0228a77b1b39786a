"""The language-model kind's options on the form and the API: generated inputs, the three student sources,
and hidden-state matches checked against the student before anything is queued."""

from __future__ import annotations

import json
import shutil
from unittest import mock

import pytest

from distill_core.lm.testing import WORDS, make_tiny_lm
from tests.webapp.experiments import test_lm_experiment
from tests.webapp.experiments.test_lm_experiment import form
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint

lm_checkpoint, lm_dataset = test_lm_experiment.lm_checkpoint, test_lm_experiment.lm_dataset  # fixtures


@pytest.fixture(autouse=True)
def wake():
    with mock.patch("workers.dispatch.wake_workers") as wake:
        yield wake


@pytest.fixture
def lm_student_checkpoint(acme, alice, teacher_root) -> Checkpoint:
    from distill_core.teachers import inspect_checkpoint

    path = teacher_root / "acme" / "tiny-gpt2-student"
    if not path.is_dir():
        make_tiny_lm(path, "gpt2", layers=1, seed=9)
    return Checkpoint.objects.create(team=acme, name="tiny-gpt2-student", path=str(path),
                                     info=inspect_checkpoint(path), created_by=alice)


def _post(client, data: dict):
    return client.post("/experiments/new/", data)


def test_every_lm_option_has_a_generated_input_with_the_librarys_default(alice_client, lm_checkpoint, lm_dataset):
    from distill_core.lm.options import LMConfig
    from webapp.experiments.experiment_fields import INPUTS

    html = alice_client.get("/experiments/new/").content.decode()
    inputs = {d.path: name for name, d in INPUTS.items() if d.path.startswith("lm.")}
    assert {"lm.mode", "lm.loss", "lm.sample_temperature", "lm.intermediate_size", "lm.layer_pick"} <= set(inputs)
    assert inputs["lm.lambda_on_policy"] == "lm_lambda"  # the API's name from before the declarations
    for path, name in inputs.items():
        assert f'name="{name}"' in html, name
        assert INPUTS[name].default == getattr(LMConfig(), path.split(".")[1])
    assert 'name="lm_student_checkpoint"' in html and 'name="lm_sample_prompts"' in html


def test_a_refusal_uses_the_declarations_wording(alice_client, acme, lm_checkpoint, lm_dataset):
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, lm_temperature="0"))
    assert response.status_code == 400
    assert response.context["form"].errors["lm_temperature"] == [
        "temperature must be greater than 0 and at most 1000 (got 0)."]


@pytest.mark.parametrize(("extra", "lm"), [
    ({"lm_student_source": "derived", "lm_layers": "2", "lm_layer_pick": "top"},
     {"student_source": "derived", "layers": 2, "layer_pick": "top", "student_path": ""}),
    ({"lm_student_source": "preset", "lm_layers": "1", "lm_hidden_size": "16", "lm_num_heads": "2",
      "lm_intermediate_size": "48"},
     {"student_source": "preset", "layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 48}),
])
def test_a_derived_or_preset_student_is_queued_from_the_form(alice_client, acme, lm_checkpoint, lm_dataset, extra, lm):
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, **extra))
    assert response.status_code == 302, response.content.decode()[:2000]
    config = Experiment.objects.get().config["lm"]
    assert {k: config[k] for k in lm} == lm


def test_a_registered_checkpoint_student_becomes_the_student_path(alice_client, acme, lm_checkpoint, lm_dataset,
                                                                  lm_student_checkpoint):
    data = form(acme, lm_checkpoint, lm_dataset, lm_student_source="checkpoint",
                lm_student_checkpoint=lm_student_checkpoint.pk)
    response = _post(alice_client, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Experiment.objects.get().config["lm"]["student_path"] == lm_student_checkpoint.path


def test_a_checkpoint_student_with_another_tokenizer_is_refused_on_its_field(alice_client, acme, alice, lm_checkpoint,
                                                                            lm_dataset, teacher_root):
    from distill_core.teachers import inspect_checkpoint

    path = teacher_root / "acme" / "tiny-gpt2-zebra"
    if not path.is_dir():
        make_tiny_lm(path, "gpt2", layers=1, seed=9, words=("zebra",) + WORDS)
    student = Checkpoint.objects.create(team=acme, name="zebra", path=str(path), info=inspect_checkpoint(path),
                                        created_by=alice)
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, lm_student_source="checkpoint",
                                        lm_student_checkpoint=student.pk))
    assert response.status_code == 400 and not Experiment.objects.exists()
    [message] = response.context["form"].errors["lm_student_checkpoint"]
    assert "must share a tokenizer" in message and "'zebra' in the student" in message


def test_a_checkpoint_student_must_be_chosen_the_teams_and_on_disk(alice_client, acme, other, charlie, lm_checkpoint,
                                                                   lm_dataset, lm_student_checkpoint, teacher_root):
    def errors(**extra) -> list[str]:
        response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, **extra))
        assert response.status_code == 400
        return response.context["form"].errors["lm_student_checkpoint"]

    assert errors(lm_student_source="checkpoint") == ["Choose the student checkpoint (a causal LM of the team)."]
    assert "only read with Student" in errors(lm_student_checkpoint=lm_student_checkpoint.pk)[0]
    theirs = Checkpoint.objects.create(team=other, name="theirs", path=lm_student_checkpoint.path,
                                       info=lm_student_checkpoint.info, created_by=charlie)
    assert "Select a valid choice" in errors(lm_student_source="checkpoint", lm_student_checkpoint=theirs.pk)[0]
    gone = teacher_root / "acme" / "gone-student"
    shutil.copytree(lm_student_checkpoint.path, gone)
    row = Checkpoint.objects.create(team=acme, name="gone", path=str(gone), info=lm_student_checkpoint.info,
                                    created_by=lm_student_checkpoint.created_by)
    shutil.rmtree(gone)
    assert "its files are gone" in errors(lm_student_source="checkpoint", lm_student_checkpoint=row.pk)[0]
    assert not Experiment.objects.exists()


def test_hidden_state_match_rows_are_checked_against_the_lm_student(alice_client, acme, lm_checkpoint, lm_dataset):
    preset = {"lm_student_source": "preset", "lm_layers": "2", "lm_hidden_size": "16", "lm_num_heads": "2",
              "matches_mode": "rows"}
    row = {"layer_T": 4, "layer_S": 2, "feature": "hidden", "loss": "hidden_mse"}
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, **preset, match_rows=json.dumps([row])))
    assert response.status_code == 400
    assert "hidden sizes differ (student 16, teacher 32)" in response.context["form"].errors["match_rows"][0]

    projected = [{**row, "proj": ["linear", 16, 32]}]
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, **preset, match_rows=json.dumps(projected)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Experiment.objects.get().config["matches"] == [{**projected[0], "weight": 1.0}]


def test_lm_stages_are_queued_from_the_form_and_their_matches_checked_against_the_student(
        alice_client, acme, lm_checkpoint, lm_dataset):
    row = {"layer_T": 4, "layer_S": 2, "feature": "hidden", "loss": "hidden_mse"}
    stages = [{"name": "layers", "kd_weight": 0, "alpha": 0, "matches": [{**row, "layer_S": 3}]},
              {"name": "tokens", "temperature": 2.0, "alpha": 0.5}]
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, lm_layers="2", stages=json.dumps(stages)))
    assert response.status_code == 400
    assert "layers: " in response.context["form"].errors["stages"][0]
    stages[0]["matches"] = [row]
    response = _post(alice_client, form(acme, lm_checkpoint, lm_dataset, lm_layers="2", stages=json.dumps(stages)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [s["name"] for s in Experiment.objects.get().config["stages"]] == ["layers", "tokens"]


def test_generated_matches_follow_the_lm_students_layers(alice_client, acme, lm_checkpoint, lm_dataset):
    data = form(acme, lm_checkpoint, lm_dataset, lm_layers="2", matches_mode="generate", generate_strategy="uniform",
                generate_feature="hidden", generate_loss="hidden_mse", generate_weight="0.5")
    response = _post(alice_client, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rows = Experiment.objects.get().config["matches"]
    assert [(m["layer_T"], m["layer_S"], m["proj"]) for m in rows] == [(0, 0, None), (2, 1, None), (4, 2, None)]

    attention = form(acme, lm_checkpoint, lm_dataset, matches_mode="generate", generate_feature="attention",
                     generate_loss="attention_mse")
    response = _post(alice_client, attention)
    assert response.status_code == 400 and "no attention maps" in str(response.context["form"].errors)


def test_the_api_queues_an_lm_run_with_a_checkpoint_student(api, acme, lm_checkpoint, lm_dataset,
                                                            lm_student_checkpoint):
    body = {"name": "api lm", "teacher": lm_checkpoint.pk, "dataset": lm_dataset.pk, "kind": "lm_distill",
            "max_length": 24, "lm_mode": "online", "lm_loss": "reverse_kl", "lm_student_source": "checkpoint",
            "lm_student_checkpoint": lm_student_checkpoint.pk, "lm_sample_temperature": 0.7}
    response = api.post("/api/experiments/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.json()
    lm = Experiment.objects.get().config["lm"]
    assert (lm["mode"], lm["loss"], lm["student_path"], lm["sample_temperature"]) == (
        "online", "reverse_kl", lm_student_checkpoint.path, 0.7)
    schema = api.get("/api/schema.json").json()
    assert "lm_student_checkpoint" in json.dumps(schema) and "lm_sample_temperature" in json.dumps(schema)


def test_an_lm_config_is_queued_again_from_its_json_with_its_student_and_prompts(api, alice_client, acme, lm_checkpoint,
                                                                                lm_dataset, lm_student_checkpoint):
    data = form(acme, lm_checkpoint, lm_dataset, lm_student_source="checkpoint", lm_mode="online",
                lm_student_checkpoint=lm_student_checkpoint.pk, lm_sample_prompts="what does the cat ?\nwho is , here ?")
    assert _post(alice_client, data).status_code == 302
    original = Experiment.objects.get()
    response = api.post("/api/experiments/from-config/", json.dumps({"config": original.config, "name": "again"}),
                        content_type="application/json")
    assert response.status_code == 201, response.json()
    again = Experiment.objects.get(pk=response.json()["id"])
    assert again.config["lm"] == original.config["lm"]
    assert again.config["lm"]["sample_prompts"] == ["what does the cat ?", "who is , here ?"]
