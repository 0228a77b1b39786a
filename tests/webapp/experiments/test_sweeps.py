"""Sweeps: comma-separated lists create one experiment per combination, all in one transaction,
tagged as one sweep; a bad value in any list creates none."""

from __future__ import annotations

import itertools
import json
from unittest import mock

import pytest

from webapp.experiments.models import Experiment, Tag
from webapp.experiments.sweeps import MAX_COMBINATIONS, combination_name

URL = "/experiments/new/"


def refused(response, field: str, text: str) -> None:
    assert response.status_code == 400, response.status_code
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(text in e for e in errors[field]), errors[field]
    assert Experiment.objects.count() == 0 and Tag.objects.count() == 0


def test_a_sweep_creates_one_experiment_per_combination(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "sweep_temperature": "1, 4", "sweep_alpha": "0, 0.5, 0.9",
                                       "priority": "3", "pool": "a100"})
    experiments = list(Experiment.objects.order_by("pk"))
    assert len(experiments) == 6
    tag = Tag.objects.get()
    assert tag.name == f"sweep-{experiments[0].pk}"
    assert response.status_code == 302 and response["Location"] == f"/?tag={tag.name}"
    assert set(tag.experiments.all()) == set(experiments)
    combos = [(e.config["kd"]["temperature"], e.config["kd"]["alpha"]) for e in experiments]
    assert combos == list(itertools.product([1.0, 4.0], [0.0, 0.5, 0.9]))
    assert experiments[0].name == "tiny → TextCNN [T=1, α=0]" == experiments[0].config["name"]
    assert len({e.name for e in experiments}) == 6
    assert all(e.priority == 3 and e.pool == "a100" for e in experiments)
    assert all(e.config["output_dir"].endswith(f"/experiments/{e.pk}/student") for e in experiments)
    assert wake == ["a100"] * 6


def test_the_list_filtered_to_the_sweep_shows_its_runs(alice_client, form_data, experiment, wake):
    response = alice_client.post(URL, {**form_data, "sweep_learning_rate": "1e-3, 5e-4"}, follow=True)
    html = response.content.decode()
    assert "Queued 2 experiments" in html
    assert "tiny → TextCNN [lr=0.001]" in html and "tiny → TextCNN [lr=0.0005]" in html
    assert experiment.name not in html  # the run outside the sweep is filtered out


def test_students_can_be_swept_with_their_own_options(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "sweep_student_type": "TextCNN, bilstm", "rnn_hidden_size": "12",
                                       "cnn_num_filters": "7", "sweep_temperature": "2,3"})
    assert response.status_code == 302, response.context["form"].errors
    stored = [(e.student_type, e.config["kd"]["temperature"], e.config["student"]["options"])
              for e in Experiment.objects.order_by("pk")]
    bilstm = {"hidden_size": 12}
    assert stored == [("textcnn", 2.0, {"num_filters": 7}), ("bilstm", 2.0, bilstm),
                      ("textcnn", 3.0, {"num_filters": 7}), ("bilstm", 3.0, bilstm)]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("sweep_temperature", "2, abc", "'abc' is not a number"),
    ("sweep_temperature", "2, nan", "'nan' is not a finite number"),
    ("sweep_temperature", "inf", "'inf' is not a finite number"),
    ("sweep_temperature", "2, 0", "The temperature 0 is out of range: it must be greater than 0"),
    ("sweep_temperature", "1e400", "not a finite number"),
    ("sweep_alpha", "0.5, 1.5", "α 1.5 is out of range"),
    ("sweep_alpha", "0.2, 0.2", "'0.2' appears twice"),
    ("sweep_learning_rate", "1e-3, 11", "The learning rate 11 is out of range"),
    ("sweep_learning_rate", ",".join(str(i) for i in range(1, 18)), "At most 16 values"),
    ("sweep_student_type", "textcnn, gpt5", "'gpt5' is not a student"),
    ("sweep_student_type", "<script>x</script>", "is not a student"),
])
def test_a_bad_value_in_one_list_creates_nothing(alice_client, form_data, wake, field, value, message):
    data = {**form_data, "sweep_temperature": "1, 2", "sweep_alpha": "0.1, 0.2", field: value}
    response = alice_client.post(URL, data)
    refused(response, field, message)
    assert "<script>x" not in response.content.decode()
    assert wake == []


def test_negative_zero_is_simply_zero(alice_client, form_data, wake):
    # "-0" parses as -0.0, which is within 0..1: accepted as α = 0.
    response = alice_client.post(URL, {**form_data, "sweep_alpha": "-0, 1"})
    assert response.status_code == 302


def test_a_sweep_above_the_cap_is_refused(alice_client, form_data, wake):
    temps = ", ".join(str(t) for t in range(1, 9))
    alphas = ", ".join(f"0.{i}" for i in range(1, 10))
    refused(alice_client.post(URL, {**form_data, "sweep_temperature": temps, "sweep_alpha": alphas}),
            "sweep_temperature", f"8 × 9 = 72 experiments; a sweep may create at most {MAX_COMBINATIONS}")


def test_a_combination_refused_by_distill_core_creates_none(alice_client, form_data, wake):
    rows = [{"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "mmd"}]
    response = alice_client.post(URL, {**form_data, "student_vocab": "teacher", "matches_mode": "rows",
                                       "match_rows": json.dumps(rows), "sweep_student_type": "bilstm, textcnn"})
    refused(response, "match_rows", "With student=textcnn: match 0: layer_S=1 but the student textcnn has hidden "
                                 "states 0..0")


def test_a_failure_half_way_leaves_nothing_behind(alice_client, form_data):
    calls = []

    def flaky(pool):
        calls.append(pool)
        if len(calls) == 3:
            raise RuntimeError("broker gone")

    with mock.patch("workers.dispatch.wake_workers", side_effect=flaky), pytest.raises(RuntimeError):
        alice_client.post(URL, {**form_data, "sweep_temperature": "1, 2, 3, 4"})
    assert Experiment.objects.count() == 0 and Tag.objects.count() == 0


def test_an_existing_tag_of_the_same_name_is_not_reused(alice_client, form_data, acme, wake, make_experiment):
    probe = make_experiment()  # ids are not reused, and PostgreSQL does not restart them per test
    first = probe.pk + 1
    probe.delete()
    Tag.objects.create(team=acme, name=f"sweep-{first}")
    alice_client.post(URL, {**form_data, "sweep_alpha": "0.1, 0.2"})
    assert Experiment.objects.order_by("pk").first().pk == first
    assert Experiment.objects.filter(tags__name=f"sweep-{first}").count() == 0
    assert Experiment.objects.filter(tags__name=f"sweep-{first + 1}").count() == 2


def test_one_value_lists_create_one_plain_experiment(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "sweep_temperature": "5"})
    experiment = Experiment.objects.get()
    assert response["Location"] == f"/experiments/{experiment.pk}/"
    assert experiment.config["kd"]["temperature"] == 5.0 and experiment.name == "tiny → TextCNN [T=5]"
    assert Tag.objects.count() == 0


def test_combination_names_stay_within_the_limit():
    name = combination_name("x" * 200, {"temperature": 2.0, "student_type": "bilstm"})
    assert len(name) == 200 and name.endswith(" [T=2, student=bilstm]")
