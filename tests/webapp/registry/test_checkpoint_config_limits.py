"""A teacher's config.json is bounded before a model is built, and its inspection is computed once.

The bomb is the tiny teacher's own archive with config.json saying num_hidden_layers: 9000
(accepted after 36 s and +430 MB before the limits).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distill_core import checkpoint_limits
from distill_core.errors import CheckpointError
from tests.webapp.factories import run_on_commit, zip_bytes
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint


@pytest.fixture(scope="module")
def teacher_files(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(teacher_dir).iterdir()) if p.is_file()}


def with_config(teacher_files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(teacher_files["config.json"])
    return {**teacher_files, "config.json": json.dumps({**config, **changes}).encode()}


def test_a_config_with_9000_layers_is_refused_without_building_the_model(alice_client, acme, teacher_files,
                                                                        eager_tasks):
    data = zip_bytes(with_config(teacher_files, num_hidden_layers=9000))
    started = time.monotonic()
    with run_on_commit():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "deep", "path": "",
                                                           "archive": SimpleUploadedFile("t.zip", data)})
    assert time.monotonic() - started < 5
    checkpoint = Checkpoint.objects.get(name="deep")
    assert checkpoint.status == Checkpoint.Status.FAILED
    assert checkpoint.error == "config.json sets num_hidden_layers to 9,000; teachers may have at most 256 layers."
    assert checkpoint.error in html.unescape(alice_client.get(response["Location"]).content.decode())


@pytest.mark.parametrize("changes, named", [
    ({"hidden_size": 10**6}, "hidden_size to 1,000,000"),
    ({"num_attention_heads": 4096}, "num_attention_heads to 4,096"),
    ({"intermediate_size": 10**7}, "intermediate_size to 10,000,000"),
    ({"vocab_size": 10**8}, "vocab_size to 100,000,000"),
    ({"max_position_embeddings": 10**9}, "max_position_embeddings to 1,000,000,000"),
    ({"text_config": {"n_layer": 10**4}}, "text_config.n_layer to 10,000"),
    ({"id2label": {str(i): f"l{i}" for i in range(20_000)}}, "id2label has 20,000 labels"),
    ({"num_local_experts": 100_000}, "num_local_experts to 100,000"),
])
def test_every_bounded_field_is_named_with_its_limit(tmp_path, teacher_files, changes, named):
    path = tmp_path / "config.json"
    path.write_bytes(with_config(teacher_files, **changes)["config.json"])
    with pytest.raises(CheckpointError) as refused:
        checkpoint_limits.check_config_file(path, "teacher.path")
    assert named in refused.value.message and refused.value.field == "teacher.path"


def test_an_oversized_or_deeply_nested_config_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b" " * (checkpoint_limits.MAX_CONFIG_BYTES + 1))
    with pytest.raises(CheckpointError, match="a model's config is a few KB"):
        checkpoint_limits.check_config_file(path, "teacher.path")
    path.write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint_limits.check_config_file(path, "teacher.path")
    nested: dict = {}
    for _ in range(20):
        nested = {"sub": nested}
    path.write_text(json.dumps(nested))
    with pytest.raises(CheckpointError, match="nests objects more than 8 deep"):
        checkpoint_limits.check_config_file(path, "teacher.path")


def test_a_path_registration_is_refused_the_same_way(alice_client, acme, teacher_root, teacher_files):
    directory = Path(teacher_root) / "acme" / "deep-by-path"  # inside Acme's folder, where teams may register from
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in with_config(teacher_files, num_hidden_layers=9000).items():
        (directory / name).write_bytes(data)
    response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "deep", "path": str(directory)})
    assert "num_hidden_layers to 9,000" in response.content.decode()
    assert not Checkpoint.objects.filter(name="deep").exists()


def test_creating_an_experiment_reads_the_stored_inspection(alice_client, form_data, checkpoint, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the new-experiment form must not inspect the checkpoint again")

    monkeypatch.setattr("distill_core.teachers.inspect_checkpoint", forbidden)
    monkeypatch.setattr("webapp.registry.form_base.inspect", forbidden)
    with run_on_commit():
        response = alice_client.post("/experiments/new/", form_data)
    assert response.status_code == 302, response.content.decode()[:500]
    assert Experiment.objects.get().teacher == checkpoint


def test_a_teacher_that_is_still_unpacking_cannot_be_chosen(alice_client, form_data, checkpoint):
    checkpoint.status = Checkpoint.Status.UNPACKING
    checkpoint.save(update_fields=["status"])
    response = alice_client.post("/experiments/new/", form_data)
    assert response.status_code == 400 and "not one of the available choices" in response.content.decode()
    assert not Experiment.objects.exists()


def test_registering_a_path_builds_no_model_in_the_request(alice_client, acme, teacher_dir, monkeypatch, settings):
    import transformers

    def forbidden(*args, **kwargs):
        raise AssertionError("a web request must not build a model")

    sent = []
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_config", forbidden)
    monkeypatch.setattr("workers.archive_tasks.describe_checkpoint.apply_async", lambda **kw: sent.append(kw))
    with run_on_commit():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "tiny", "path": str(teacher_dir)})
    checkpoint = Checkpoint.objects.get(name="tiny")
    assert response.status_code == 302 and checkpoint.is_ready
    assert checkpoint.info["num_layers"] == 2 and checkpoint.info["parameters"] is None
    assert sent == [{"args": [checkpoint.pk], "queue": settings.HOUSEKEEPING_QUEUE}]


def test_the_housekeeping_task_counts_the_parameters_once(alice_client, acme, teacher_dir, teacher_info, eager_tasks):
    from webapp.registry import archive_jobs

    with run_on_commit():
        alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "tiny", "path": str(teacher_dir)})
    checkpoint = Checkpoint.objects.get(name="tiny")
    assert checkpoint.info["parameters"] == teacher_info["parameters"] > 0
    assert archive_jobs.describe_stored(checkpoint.pk) == "skipped"


def test_a_model_over_the_module_budget_fails_the_checkpoint_in_the_task(alice_client, acme, teacher_root,
                                                                         teacher_files, eager_tasks, monkeypatch):
    from distill_core import checkpoint_limits

    directory = Path(teacher_root) / "acme" / "many-modules"  # inside Acme's folder, where teams may register from
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in with_config(teacher_files, num_hidden_layers=200).items():  # ~3,600 modules
        (directory / name).write_bytes(data)
    monkeypatch.setattr(checkpoint_limits, "MAX_MODULES", 1000)
    with run_on_commit():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "wide", "path": str(directory)})
    assert response.status_code == 302  # the request itself builds nothing
    checkpoint = Checkpoint.objects.get(name="wide")
    assert checkpoint.status == Checkpoint.Status.FAILED and "more than 1,000 modules" in checkpoint.error
