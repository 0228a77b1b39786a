"""Registering a teacher checkpoint: only real HF checkpoints from inside the team's folder of a root.

Cross-team attempts (another team's directory, `//`, `/./`, `..`, symlinks) are in
test_checkpoint_ownership.py.
"""

from __future__ import annotations

import os

import pytest

from tests.webapp.factories import run_on_commit
from webapp.registry.models import Checkpoint

URL = "/checkpoints/new/"
OUTSIDE = "is not a directory in Acme's checkpoint folder"


def register(client, team, path, name="tiny"):
    return client.post(URL, {"team": team.pk, "name": name, "path": str(path)})


def assert_refused(response, text: str, field: str = "path"):
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(text in e for e in errors.get(field, [])), errors
    assert Checkpoint.objects.count() == 0


def test_the_form_renders(alice_client, acme):
    response = alice_client.get(URL)
    assert response.status_code == 200 and b"save_pretrained()" in response.content


def test_it_registers_a_checkpoint_and_stores_its_info(alice_client, alice, acme, teacher_dir, eager_tasks):
    with run_on_commit():  # a housekeeping task counts the parameters (the request builds no model)
        response = register(alice_client, acme, teacher_dir)
    checkpoint = Checkpoint.objects.get()
    assert response["Location"] == f"/checkpoints/{checkpoint.pk}/"
    assert checkpoint.team == acme and checkpoint.created_by == alice and checkpoint.path == str(teacher_dir)
    info = checkpoint.info
    assert info["model_type"] == "bert" and info["num_labels"] == 3
    assert info["labels"] == ["finance", "sports", "tech"]
    assert info["num_layers"] == 2 and info["hidden_size"] == 32
    assert info["parameters"] > 0 and info["size_bytes"] > 0


def test_the_detail_page_shows_the_architecture(alice_client, checkpoint):
    response = alice_client.get(f"/checkpoints/{checkpoint.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("bert", "Layers", "Hidden size", "Attention heads", "Parameters", "Size on disk", "finance",
                 "sports", "tech", str(checkpoint.path)):
        assert text in html, text


def test_the_detail_page_shows_a_float16_checkpoints_saved_and_compute_precision(alice_client, acme, teacher_root):
    from distill_core.testing import make_tiny_teacher

    path = make_tiny_teacher(teacher_root / "acme" / "half-bert", ["finance", "sports", "tech"], "abcdef", dtype="float16")
    register(alice_client, acme, path, name="half")
    checkpoint = Checkpoint.objects.get(name="half")
    assert checkpoint.info["dtype"] == "float16"
    html = alice_client.get(f"/checkpoints/{checkpoint.pk}/").content.decode()
    assert "float16 on disk; the teacher runs in float32 on CPU, float16 on CUDA" in html


def test_the_list_shows_the_teams_checkpoints(alice_client, checkpoint):
    response = alice_client.get("/checkpoints/")
    assert b"tiny-bert" in response.content and b"Register checkpoint" in response.content


def test_an_empty_list_offers_to_register_one(alice_client, acme):
    assert b"Register a checkpoint" in alice_client.get("/checkpoints/").content


def test_it_refuses_a_path_outside_the_allowed_roots(alice_client, acme, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert_refused(register(alice_client, acme, outside), OUTSIDE)


def test_it_refuses_a_symlink_that_escapes_the_roots(alice_client, acme, tmp_path, teacher_root):
    outside = tmp_path / "secret-model"
    outside.mkdir()
    link = teacher_root / "acme" / f"escape-{os.getpid()}-{tmp_path.name}"
    link.symlink_to(outside)
    try:
        assert_refused(register(alice_client, acme, link), OUTSIDE)
    finally:
        link.unlink()


def test_it_refuses_dot_dot_escapes(alice_client, acme, teacher_root, tmp_path):
    sneaky = teacher_root / ".." / tmp_path.name
    assert_refused(register(alice_client, acme, sneaky), OUTSIDE)


def test_it_accepts_a_symlink_that_stays_inside_and_stores_the_real_path(alice_client, acme, teacher_root,
                                                                        teacher_dir, tmp_path):
    link = teacher_root / "acme" / f"alias-{os.getpid()}-{tmp_path.name}"
    link.symlink_to(teacher_dir)
    try:
        register(alice_client, acme, link)
    finally:
        link.unlink()
    assert Checkpoint.objects.get().path == str(teacher_dir)


def test_it_refuses_a_directory_that_is_not_a_checkpoint(alice_client, acme, teacher_root, tmp_path):
    junk = teacher_root / "acme" / f"junk-{tmp_path.name}"
    junk.mkdir()
    (junk / "README.txt").write_text("not a model")
    assert_refused(register(alice_client, acme, junk), "no config.json")


def test_it_refuses_a_path_that_does_not_exist(alice_client, acme, teacher_root):
    assert_refused(register(alice_client, acme, teacher_root / "acme" / "missing"), "does not exist")


@pytest.mark.parametrize("path", ["relative/dir", "", "/tmp/\x00evil"])
def test_it_refuses_odd_paths(alice_client, acme, path):
    response = register(alice_client, acme, path)
    assert response.status_code == 400 and "path" in response.context["form"].errors
    assert Checkpoint.objects.count() == 0


def test_it_refuses_a_duplicate_name(alice_client, acme, checkpoint, teacher_dir):
    assert_refused_dup = register(alice_client, acme, teacher_dir, name=checkpoint.name)
    assert "already has a checkpoint" in assert_refused_dup.context["form"].errors["name"][0]
    assert Checkpoint.objects.count() == 1


def test_it_refuses_another_teams_team(alice_client, other, teacher_dir):
    assert_refused(register(alice_client, other, teacher_dir), "Select a valid choice", field="team")
