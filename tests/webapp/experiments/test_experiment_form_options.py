"""The new-experiment form expresses every distill_core option: each group reaches the stored config,
defaults are the library's, and every refusal is a message on its field with nothing queued."""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import pytest

from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from webapp.experiments.configs import FORM_FIELDS, STUDENT_OPTION_FIELDS, form_field_for
from webapp.experiments.experiment_fields import SECTIONS
from webapp.experiments.experiment_form import ExperimentForm
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint

URL = "/experiments/new/"

EVERY_GROUP = {
    # basics
    "max_length": "24", "multi_label": "on", "label_separator": "|",
    # student
    "student_type": "bilstm", "student_vocab": "word", "embedding_dim": "48",
    "rnn_hidden_size": "20", "rnn_fc_size": "30", "rnn_dropout": "0.2", "rnn_siamese": "on",
    # KD loss
    "temperature": "3.5", "alpha": "0.3", "kd_loss": "bce", "t2_scaling": "false", "kd_weight": "0.9",
    # schedules
    "temperature_schedule": "cosine", "temperature_final": "1.5", "schedule_beta": "0.5", "schedule_gamma": "3",
    "kd_weight_schedule": "linear_decay", "hard_weight_schedule": "linear_growth", "lr_schedule": "cosine",
    "warmup_ratio": "0.1",
    # augmentation
    "augment": "on", "augment_n_iter": "4", "augment_p_mask": "0.2", "augment_p_replace": "0.3", "augment_p_ng": "0.5",
    "augment_ngram_range": "2, 4", "augment_replace_window": "7", "augment_max_examples": "999",
    # optimisation
    "epochs": "2", "batch_size": "16", "learning_rate": "0.0005", "optimizer": "sgd", "weight_decay": "0.01",
    "grad_clip": "0", "grad_accumulation": "2", "bucket_by_length": "off", "amp": "bf16", "max_steps": "50", "early_stopping_patience": "3",
    "best_metric": "macro_f1", "log_every": "5", "eval_every": "20", "checkpoint_every": "40", "device": "cuda:1",
    # resources
    "priority": "7", "pool": "a100",
    # advanced
    "kind": "distill", "seed": "1234", "teacher_weight": "2",
}


def post(client, data, **changes):
    return client.post(URL, {**data, **changes})


def refused(response, field: str, text: str) -> None:
    assert response.status_code == 400, response.status_code
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(text in e for e in errors[field]), errors[field]
    assert Experiment.objects.count() == 0


def test_every_groups_values_reach_the_stored_config(alice_client, form_data, wake):
    response = post(alice_client, form_data, **EVERY_GROUP)
    assert response.status_code == 302, response.context["form"].errors
    experiment = Experiment.objects.get()
    config = ExperimentConfig.from_dict(experiment.config)
    assert (config.data.max_length, config.data.multi_label, config.data.label_separator) == (24, True, "|")
    assert (config.student.type, config.student.vocab, config.student.embedding_dim) == ("bilstm", "word", 48)
    assert config.student.options == {"hidden_size": 20, "fc_size": 30, "dropout": 0.2, "siamese": True}
    assert dataclasses.asdict(config.kd) == {
        "temperature": 3.5, "alpha": 0.3, "t2_scaling": False, "loss": "bce", "temperature_schedule": "cosine",
        "temperature_final": 1.5, "schedule_beta": 0.5, "schedule_gamma": 3.0, "kd_weight": 0.9,
        "kd_weight_schedule": "linear_decay", "hard_weight_schedule": "linear_growth"}
    assert dataclasses.asdict(config.augment) == {
        "enabled": True, "n_iter": 4, "p_mask": 0.2, "p_replace": 0.3, "p_ng": 0.5, "ngram_range": [2, 4],
        "replace_window": 7, "replace": "frequency", "neighbours": 15, "max_examples": 999}
    assert dataclasses.asdict(config.train) == {
        "epochs": 2, "batch_size": 16, "learning_rate": 0.0005, "optimizer": "sgd", "weight_decay": 0.01,
        "lr_schedule": "cosine", "warmup_ratio": 0.1, "grad_clip": None, "grad_accumulation": 2,
        "bucket_by_length": "off",
        "checkpoint_every": 40, "early_stopping_patience": 3, "best_metric": "macro_f1", "amp": "bf16",
        "log_every": 5, "eval_every": 20, "max_steps": 50, "device": "cuda:1"}
    assert (config.seed, config.kind, config.teacher.weight) == (1234, "distill", 2.0)
    assert (experiment.priority, experiment.pool) == (7, "a100")
    assert wake == ["a100"]


def test_the_api_style_minimal_dict_still_validates_with_the_librarys_defaults(alice, form_data):
    form = ExperimentForm(data=form_data, user=alice)
    assert form.is_valid(), form.errors
    config = form.config
    defaults = ExperimentConfig()
    for section in ("kd", "augment"):
        assert config[section] == dataclasses.asdict(getattr(defaults, section)), section
    assert config["train"] == {**dataclasses.asdict(defaults.train), "batch_size": 64, "learning_rate": 0.001}
    student = dataclasses.asdict(defaults.student)
    assert config["student"] == {"type": "textcnn", "vocab": "char", "embedding_dim": 128,
                                 "embedding_init": student["embedding_init"], "embedding_file": None,
                                 "embedding_projection": student["embedding_projection"], "prune_vocab": False, "prune_unseen": "unk",
                                 "options": {}}
    assert config["matches"] == [] and config["stages"] == [] and config["teacher"]["ensemble"] == []
    assert len(form.configs) == 1


def test_the_forms_initial_values_are_distill_cores_defaults(alice, checkpoint, dataset):
    form = ExperimentForm(user=alice)
    defaults = {**ExperimentConfig().to_dict(), "lm": ExperimentConfig(kind="lm_distill").to_dict()["lm"]}
    for path, field in FORM_FIELDS.items():
        value = defaults
        for part in path.split("."):
            value = value[part]
        initial = form.fields[field].initial
        if path in ("name", "teacher.path", "data.train", "matches", "stages", "teacher.ensemble", "lm.sample_prompts",
                    "lm.student_path"):  # a row of the team, not a value
            continue
        if isinstance(value, list):
            assert initial == ", ".join(map(str, value)), path
        elif isinstance(value, bool) and field == "t2_scaling":
            assert initial == "true"
        elif value is None:
            assert initial is None, path
        elif field == "grad_clip" or not isinstance(value, bool):
            assert initial == value, (path, initial, value)


@pytest.mark.parametrize("student", ["textcnn", "bilstm", "transformer"])
def test_student_option_defaults_are_the_students_own(alice, checkpoint, dataset, student):
    from distill_core.students import TextCNNOptions
    from distill_core.students_rnn import BiLSTMOptions
    from distill_core.students_transformer import TransformerOptions

    options = {"textcnn": TextCNNOptions(), "bilstm": BiLSTMOptions(), "transformer": TransformerOptions()}[student]
    form = ExperimentForm(user=alice)
    for option, field in STUDENT_OPTION_FIELDS[student].items():
        value = getattr(options, option)
        initial = form.fields[field].initial
        if isinstance(value, list):
            assert initial == ", ".join(map(str, value))
        elif option in ("layers", "hidden", "heads", "ffn"):
            assert value == 0 and initial is None  # blank = the preset's
        elif value is None or isinstance(value, bool):
            assert not initial
        else:
            assert initial == value, option


def test_every_field_has_help_text_and_belongs_to_a_group(alice):
    form = ExperimentForm(user=alice)
    grouped = [name for names in SECTIONS.values() for name in names]
    assert sorted(grouped) == sorted(form.fields) and len(grouped) == len(set(grouped))
    assert [name for name, field in form.fields.items() if not field.help_text] == []


def test_the_page_shows_each_group_with_the_everyday_ones_open(alice_client, checkpoint, dataset):
    html = alice_client.get(URL).content.decode()
    for section in ("basics", "student", "kd", "matches", "schedules", "augment", "optimisation", "resources",
                    "sweep", "advanced"):
        assert f'id="section-{section}"' in html
    assert '<details class="form-section" id="section-basics" open>' in html
    assert '<details class="form-section" id="section-kd" open>' in html
    assert '<details class="form-section" id="section-augment">' in html
    assert '<details class="form-section" id="section-matches">' in html
    assert 'data-student="transformer"' in html and "js/experiment_form.js" in html


def test_a_group_with_an_error_is_opened(alice_client, form_data, wake):
    html = post(alice_client, form_data, augment_p_mask="2").content.decode()
    assert '<details class="form-section" id="section-augment" open>' in html


@pytest.mark.parametrize(("student", "fields", "options"), [
    ("textcnn", {"cnn_filter_sizes": "1,5", "cnn_num_filters": "8", "cnn_dropout": "0"},
     {"filter_sizes": [1, 5], "num_filters": 8, "dropout": 0.0}),
    ("bigru", {"rnn_hidden_size": "8", "rnn_fc_size": "9"},
     {"hidden_size": 8, "fc_size": 9}),
    ("transformer", {"tf_preset": "custom", "tf_layers": "2", "tf_hidden": "16", "tf_heads": "2", "tf_ffn": "32",
                     "tf_dropout": "0.05"},
     {"preset": "custom", "layers": 2, "hidden": 16, "heads": 2, "ffn": 32, "dropout": 0.05}),
])
def test_only_the_chosen_students_options_are_stored(alice_client, form_data, wake, student, fields, options):
    other = {"cnn_num_filters": "3", "rnn_hidden_size": "5", "tf_layers": "9"}  # the other blocks' inputs
    response = post(alice_client, form_data, student_type=student, **{**other, **fields})
    assert response.status_code == 302, response.context["form"].errors
    stored = Experiment.objects.get().config["student"]
    assert stored["type"] == student and stored["options"] == options


def test_initialising_from_the_teacher_stores_its_path_and_needs_its_width(alice_client, form_data, checkpoint, wake):
    custom = {"student_type": "transformer", "tf_preset": "custom", "tf_layers": "2", "tf_hidden": "32",
              "tf_heads": "2", "tf_ffn": "64", "tf_init_from_teacher": "on"}
    refused(post(alice_client, form_data, **custom), "student_vocab", "teacher")
    refused(post(alice_client, form_data, **{**custom, "student_vocab": "teacher", "tf_hidden": "48"}),
            "tf_init_from_teacher", "hidden size is 48 but the teacher's is 32")
    refused(post(alice_client, form_data, **{**custom, "student_vocab": "teacher", "tf_layers": "3"}),
            "tf_init_from_teacher", "3 layers but the teacher only 2")
    response = post(alice_client, form_data, **custom, student_vocab="teacher")
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["student"]["options"]["init_from_teacher"] == checkpoint.path


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"student_type": "transformer", "tf_preset": "custom"}, "tf_layers", "preset 'custom' needs"),
    ({"student_type": "transformer", "tf_hidden": "30", "tf_heads": "4"}, "tf_heads", "a divisor of hidden=30"),
    ({"temperature_schedule": "linear"}, "temperature_final", "needs temperature_final"),

    ({"augment_p_mask": "0.7", "augment_p_replace": "0.6"}, "augment_p_replace", "p_mask + p_replace"),
])
def test_distill_core_refusals_land_on_the_field(alice_client, form_data, wake, changes, field, message):
    refused(post(alice_client, form_data, **changes), field, message)
    assert wake == []


def test_a_transformer_student_refuses_a_max_length_above_its_positions(alice_client, form_data, wake, checkpoint):
    # The tiny teacher reads 128 positions; its stored description (what the form reads) says 1024,
    # so only the student's 512 limit is in the way.
    checkpoint.info = {**checkpoint.info, "max_position_embeddings": 1024}
    checkpoint.save(update_fields=["info"])
    refused(post(alice_client, form_data, student_type="transformer", max_length="600"), "max_length",
            "The transformer student reads at most 512 tokens")
    assert wake == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("seed", "99999999999999999999", "less than or equal to"),
    ("seed", "-1", "greater than or equal to 0"),
    ("embedding_dim", "1e3", "Enter a whole number"),
    ("embedding_dim", "三", "Enter a whole number"),
    ("kd_weight", "nan", "Enter a number"),
    ("kd_weight", "-0.5", "greater than or equal to 0"),
    ("temperature_final", "inf", "Enter a number"),
    ("warmup_ratio", "1", "less than or equal to 0.999"),
    ("weight_decay", "1e400", "Enter a number"),
    ("grad_clip", "-1", "greater than or equal to 0"),
    ("augment_p_ng", "1.5", "less than or equal to 1"),
    ("augment_ngram_range", "5, 2", "above the maximum"),
    ("augment_ngram_range", "1, 2, 3", "Give 2 comma-separated"),
    ("augment_ngram_range", "<b>1</b>, 2", "is not a whole number"),
    ("cnn_filter_sizes", "3, x", "'x' is not a whole number"),
    ("cnn_filter_sizes", "0", "between 1 and 64"),
    ("max_steps", "0", "greater than or equal to 1"),
    ("device", "tpu", "Use auto, cpu, cuda or cuda:N"),
    ("device", "cuda:٣", "Use auto, cpu, cuda or cuda:N"),
    ("priority", "100000", "less than or equal to 1000"),
    ("pool", "GPU pool!", "lower-case letters"),
    ("pool", "<script>", "lower-case letters"),
    ("kd_loss", "hinge", "Select a valid choice"),
    ("optimizer", "lion", "Select a valid choice"),
    ("kind", "pretrain", "Select a valid choice"),
    ("t2_scaling", "maybe", "Select a valid choice"),
    ("label_separator", "\t", "visible separator"),
    ("stages", "[{", "not valid JSON"),
    ("stages", "[NaN]", "NaN is not a number JSON allows"),
    ("stages", '{"name": "x"}', "a JSON list of objects"),
    ("stages", '[{"name": "a", "epochs": 0}]', "epochs must be between 1 and 1000"),
    ("stages", '[{"name": "a", "lr": 1}]', "Unknown key(s) in stages.0: lr"),
    ("ensemble", "nobody 1", "has no checkpoint called 'nobody'"),
    ("ensemble", "tiny-bert -2", "greater than 0"),
    ("ensemble", "tiny-bert 1e999", "greater than 0"),
])
def test_hostile_values_get_a_field_message_and_nothing_is_queued(alice_client, form_data, wake, field, value,
                                                                  message):
    refused(post(alice_client, form_data, **{field: value}), field, message)
    assert wake == []


def test_html_in_a_name_is_stored_as_text_and_escaped_on_the_page(alice_client, form_data, wake):
    name = "<img src=x onerror=alert(1)> 蒸馏 ✓"
    response = post(alice_client, form_data, name=name, pool="<b>x</b>")
    html = response.content.decode()
    assert "<img src=x" not in html and "&lt;b&gt;x&lt;/b&gt;" in html  # the refused pool, escaped
    response = post(alice_client, form_data, name=name)
    assert Experiment.objects.get().config["name"] == name
    assert "<img src=x" not in alice_client.get(response["Location"]).content.decode()


def test_a_teacher_ensemble_stores_each_checkpoints_path_and_weight(alice_client, form_data, acme, teacher_dir,
                                                                    teacher_info, wake):
    second = Checkpoint.objects.create(team=acme, name="second bert", path=str(teacher_dir), info=teacher_info)
    response = post(alice_client, form_data, teacher_weight="0.5", ensemble="second bert 2\n\ntiny-bert")
    assert response.status_code == 302, response.context["form"].errors
    teacher = Experiment.objects.get().config["teacher"]
    assert teacher["weight"] == 0.5
    assert teacher["ensemble"] == [{"path": second.path, "weight": 2.0}, {"path": teacher_dir.as_posix(),
                                                                         "weight": 1.0}]


def test_an_ensemble_member_with_other_labels_is_refused(alice_client, form_data, acme, teacher_dir, teacher_info,
                                                         wake):
    Checkpoint.objects.create(team=acme, name="five", path=str(teacher_dir), info={**teacher_info, "num_labels": 5})
    refused(post(alice_client, form_data, ensemble="five 1"), "ensemble", "predicts 5 labels but the dataset has 3")


def test_a_two_stage_run_is_stored_as_given(alice_client, form_data, wake):
    stages = [{"name": "warm", "epochs": 1, "alpha": 1.0}, {"name": "kd", "epochs": 2, "temperature": 4}]
    response = post(alice_client, form_data, stages=json.dumps(stages), kind="distill")
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["stages"] == stages


def test_a_finetune_run_skips_the_student_checks(alice_client, form_data, wake):
    response = post(alice_client, form_data, kind="finetune_teacher", student_type="transformer", tf_preset="custom")
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["kind"] == "finetune_teacher"


@pytest.mark.parametrize(("config_field", "student", "form_field"), [
    ("kd.loss", "textcnn", "kd_loss"), ("kd.temperature_final", "textcnn", "temperature_final"),
    ("train.optimizer", "textcnn", "optimizer"), ("train.grad_clip", "textcnn", "grad_clip"),
    ("augment.ngram_range", "textcnn", "augment_ngram_range"), ("augment.enabled", "textcnn", "augment"),
    ("data.label_separator", "textcnn", "label_separator"), ("data.train", "textcnn", "dataset"),
    ("student.vocab", "textcnn", "student_vocab"), ("student.embedding_dim", "textcnn", "embedding_dim"),
    ("student.options.dropout", "textcnn", "cnn_dropout"), ("student.options.dropout", "bigru", "rnn_dropout"),
    ("student.options.dropout", "transformer", "tf_dropout"), ("student.options.sep_id", "bilstm", "student_type"),
    ("student.options.init_from_teacher", "transformer", "tf_init_from_teacher"),
    ("teacher.weight", "textcnn", "teacher_weight"), ("teacher.ensemble.1.weight", "textcnn", "ensemble"),
    ("matches.2.layer_T", "textcnn", "match_rows"), ("matches.preset", "textcnn", "match_rows"),
    ("stages.0.matches.1.proj", "textcnn", "stages"), ("seed", "textcnn", "seed"), ("kind", "textcnn", "kind"),
])
def test_each_config_path_maps_to_its_field(config_field, student, form_field):
    assert form_field_for(config_field, student) == form_field


@pytest.mark.parametrize(("config_field", "form_field"), [
    ("kd.schedule_gamma", "schedule_gamma"), ("train.device", "device"), ("augment.max_examples",
                                                                          "augment_max_examples"),
    ("student.options.num_filters", "cnn_num_filters"), ("matches.0.loss", "match_rows"), ("stages.1.epochs", "stages"),
])
def test_config_errors_land_on_their_field_through_the_page(alice_client, form_data, wake, config_field,
                                                            form_field):
    error = ConfigError("Refused by distill_core.", field=config_field)
    with mock.patch("webapp.experiments.experiment_form.build_config", side_effect=error):
        refused(post(alice_client, form_data), form_field, "Refused by distill_core.")
