"""The new-experiment form: a valid submit queues a runnable config; every refusal names its field."""

from __future__ import annotations

import shutil
from unittest import mock

import pytest

from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

URL = "/experiments/new/"


@pytest.fixture
def wake():
    with mock.patch("workers.dispatch.wake_workers") as wake:
        yield wake


@pytest.fixture
def form_data(acme, checkpoint, dataset):
    return {"name": "tiny → TextCNN", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
            "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "3", "batch_size": "64",
            "learning_rate": "0.001", "max_length": "32"}


def submit(client, data, **changes):
    return client.post(URL, {**data, **changes})


def assert_refused(response, field: str, text: str):
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(text in e for e in errors[field]), errors[field]
    assert text.encode() in response.content or text in response.content.decode()
    assert Experiment.objects.count() == 0


def test_the_form_renders_with_the_team_preselected(alice_client, acme, checkpoint, dataset):
    response = alice_client.get(URL)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.fields["team"].initial == acme.pk
    assert form["temperature"].value() == 2.0 and form["alpha"].value() == 0.8
    assert b"Softens the teacher" in response.content  # help text


def test_the_form_asks_for_a_teacher_and_dataset_first(alice_client, acme):
    response = alice_client.get(URL)
    assert b"Register a checkpoint" in response.content and b"Upload a dataset" in response.content


def test_it_queues_a_valid_experiment(alice_client, alice, form_data, wake, settings):
    response = submit(alice_client, form_data)
    experiment = Experiment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/{experiment.pk}/"
    assert experiment.status == Experiment.Status.QUEUED
    assert experiment.owner == alice and experiment.pool == "default" and experiment.student_type == "textcnn"
    config = ExperimentConfig.from_dict(experiment.config)
    assert config.kd.temperature == 2.0 and config.kd.alpha == 0.8
    assert config.train.epochs == 3 and config.train.batch_size == 64 and config.train.learning_rate == 0.001
    assert config.data.max_length == 32 and config.data.labels == ["finance", "sports", "tech"]
    assert config.teacher.path == experiment.teacher.path
    assert config.output_dir == str(settings.ARTIFACT_ROOT / "experiments" / str(experiment.pk) / "student")
    wake.assert_called_once_with("default")


def test_it_queues_a_bilstm(alice_client, form_data, wake):
    submit(alice_client, form_data, student_type="bilstm", temperature="4", alpha="0")
    experiment = Experiment.objects.get()
    assert experiment.student_type == "bilstm" and experiment.config["student"]["type"] == "bilstm"
    assert experiment.config["kd"]["alpha"] == 0.0


@pytest.mark.parametrize("value", ["0", "-1"])
def test_it_refuses_a_temperature_that_is_not_positive(alice_client, form_data, wake, value):
    assert_refused(submit(alice_client, form_data, temperature=value), "temperature", "greater than 0")
    wake.assert_not_called()


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_it_refuses_alpha_outside_zero_to_one(alice_client, form_data, wake, value):
    assert_refused(submit(alice_client, form_data, alpha=value), "alpha", "between 0 and 1")


def test_it_refuses_a_checkpoint_that_no_longer_exists(alice_client, form_data, acme, tmp_path, teacher_dir,
                                                       teacher_info, wake):
    copy = tmp_path / "gone-bert"
    shutil.copytree(teacher_dir, copy)
    gone = Checkpoint.objects.create(team=acme, name="gone", path=str(copy), info=teacher_info)
    shutil.rmtree(copy)
    response = submit(alice_client, form_data, teacher=gone.pk)
    assert_refused(response, "teacher", "does not exist")


def test_it_refuses_a_directory_that_is_not_a_checkpoint(alice_client, form_data, acme, tmp_path, teacher_info,
                                                         wake):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    junk = Checkpoint.objects.create(team=acme, name="junk", path=str(tmp_path / "junk"), info=teacher_info)
    assert_refused(submit(alice_client, form_data, teacher=junk.pk), "teacher", "config.json")


def test_it_refuses_a_teacher_with_another_label_count(alice_client, form_data, acme, dataset, wake):
    ten = Dataset.objects.create(team=acme, name="ten classes", train_path=dataset.train_path,
                                 labels=[f"c{i}" for i in range(10)])
    response = submit(alice_client, form_data, dataset=ten.pk)
    assert_refused(response, "teacher", "The teacher predicts 3 labels but the dataset has 10 (c0, c1")


def test_it_refuses_another_teams_teacher(alice_client, form_data, other, teacher_dir, teacher_info, wake):
    theirs = Checkpoint.objects.create(team=other, name="theirs", path=str(teacher_dir), info=teacher_info)
    assert_refused(submit(alice_client, form_data, teacher=theirs.pk), "teacher", "Select a valid choice")


def test_it_refuses_another_teams_dataset(alice_client, form_data, other, dataset, wake):
    theirs = Dataset.objects.create(team=other, name="theirs", train_path=dataset.train_path, labels=dataset.labels)
    assert_refused(submit(alice_client, form_data, dataset=theirs.pk), "dataset", "Select a valid choice")


def test_it_refuses_a_teacher_of_another_of_my_teams(alice_client, alice, form_data, teacher_dir, teacher_info,
                                                     wake):
    second = Team.objects.create(name="Second", slug="second")
    Membership.objects.create(team=second, user=alice)
    response = submit(alice_client, form_data, team=second.pk)
    assert_refused(response, "teacher", "belongs to Acme, not Second")
    assert "dataset" in response.context["form"].errors


def test_it_refuses_a_team_the_user_is_not_in(alice_client, form_data, other, wake):
    assert_refused(submit(alice_client, form_data, team=other.pk), "team", "Select a valid choice")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("temperature", "1e400", "Enter a number"),
    ("temperature", "1e9", "at most 1000"),
    ("temperature", "nan", "Enter a number"),
    ("alpha", "inf", "Enter a number"),
    ("epochs", "99999999999999999999999999", "less than or equal to 1000"),
    ("epochs", "-3", "greater than or equal to 1"),
    ("batch_size", "0", "greater than or equal to 1"),
    ("batch_size", "1e3", "Enter a whole number"),
    ("learning_rate", "-0.01", "greater than 0"),
    ("learning_rate", "1e308", "at most 10"),
    ("max_length", "100000", "less than or equal to 4096"),
    ("max_length", "1000", "The teacher reads at most"),
    ("name", "", "This field is required"),
    ("name", "x" * 201, "at most 200 characters"),
    ("student_type", "gpt5", "Select a valid choice"),
    ("teacher", "abc", "Select a valid choice"),
    ("dataset", "99999999999999999999", "Select a valid choice"),
])
def test_hostile_values_get_field_errors_not_500s(alice_client, form_data, wake, field, value, message):
    assert_refused(submit(alice_client, form_data, **{field: value}), field, message)


@pytest.mark.parametrize(("config_field", "form_field"), [
    ("kd.temperature", "temperature"), ("kd.alpha", "alpha"), ("train.batch_size", "batch_size"),
    ("train.learning_rate", "learning_rate"), ("data.max_length", "max_length"), ("data.train", "dataset"),
    ("teacher.path", "teacher"),
])
def test_config_errors_land_on_their_field(alice_client, form_data, wake, config_field, form_field):
    error = ConfigError("Refused by distill_core.", field=config_field)
    with mock.patch("webapp.experiments.experiment_form.build_config", side_effect=error):
        assert_refused(submit(alice_client, form_data), form_field, "Refused by distill_core.")


def test_unmapped_config_errors_are_shown_for_the_whole_form(alice_client, form_data, wake):
    error = ConfigError("output_dir='x' is not writable.", field="output_dir")
    with mock.patch("webapp.experiments.experiment_form.build_config", side_effect=error):
        response = submit(alice_client, form_data)
    assert "output_dir=&#x27;x&#x27; is not writable." in response.content.decode()
    assert response.context["form"].non_field_errors() == ["output_dir='x' is not writable."]
    assert Experiment.objects.count() == 0


def test_nothing_is_saved_when_waking_the_workers_fails(alice_client, form_data):
    with mock.patch("workers.dispatch.wake_workers", side_effect=RuntimeError("boom")), \
            pytest.raises(RuntimeError):
        submit(alice_client, form_data)
    assert Experiment.objects.count() == 0


def test_a_teacher_and_dataset_can_be_preselected_from_the_url(alice_client, checkpoint, dataset):
    form = alice_client.get(f"{URL}?teacher={checkpoint.pk}&dataset={dataset.pk}").context["form"]
    assert form["teacher"].value() == str(checkpoint.pk) and form["dataset"].value() == str(dataset.pk)


def test_it_stores_an_optional_maximum_runtime(alice_client, form_data, wake):
    submit(alice_client, form_data, max_runtime_hours="1.5")
    assert Experiment.objects.get().max_runtime_seconds == 5400


def test_no_maximum_runtime_means_no_limit(alice_client, form_data, wake):
    submit(alice_client, form_data)
    assert Experiment.objects.get().max_runtime_seconds is None


def test_it_refuses_a_maximum_runtime_that_is_not_positive(alice_client, form_data, wake):
    assert_refused(submit(alice_client, form_data, max_runtime_hours="0"), "max_runtime_hours", "greater than or equal")
