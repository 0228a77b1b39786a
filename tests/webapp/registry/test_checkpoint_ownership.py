"""A checkpoint directory belongs to one team: its folder <root>/<team-slug>/, or its first registrant.

Charlie (team Other) tries to take Acme's teacher by every spelling of its path, through the
page and the API; every attempt gets the one message a path outside his folder gets, whatever
lies there, and no message names a resolved path.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.webapp.factories import DEV_ROWS, TRAIN_ROWS, tsv, zip_bytes
from webapp.registry import ownership
from webapp.registry.models import Checkpoint, Dataset

URL = "/checkpoints/new/"


@pytest.fixture
def scratch(teacher_root, tmp_path):
    """Directories and links made inside the session-wide teacher root, removed after the test."""
    made: list[Path] = []

    def make(relative: str, link_to: Path | None = None, files: dict[str, str] | None = None) -> Path:
        path = Path(teacher_root) / relative.replace("{test}", f"{os.getpid()}-{tmp_path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if link_to is not None:
            path.symlink_to(link_to)
        else:
            path.mkdir()
            for name, text in (files or {}).items():
                (path / name).write_text(text)
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


def spellings(teacher_root: Path, teacher_dir: Path) -> dict[str, str]:
    """Acme's teacher, spelt the ways a hostile member of Other would try."""
    relative = teacher_dir.relative_to(teacher_root).as_posix()  # acme/tiny-bert
    root = str(teacher_root)
    return {
        "plain": str(teacher_dir),
        "double slashes": root + "//" + relative.replace("/", "//"),
        "dot segments": root + "/./" + relative.replace("/", "/./"),
        "trailing slash": str(teacher_dir) + "/",
        "dot-dot from own folder": f"{root}/other/../{relative}",
        "dot-dot through a missing folder": f"{root}/other/missing/../../{relative}",
    }


def register_page(client, team, path: str, name: str = "stolen"):
    response = client.post(URL, {"team": team.pk, "name": name, "path": path})
    assert response.status_code == 400, "a refused form is shown again"
    return response.context["form"].errors.get("path", [])


def register_api(client, path: str, name: str = "stolen"):
    response = client.post("/api/checkpoints/", json.dumps({"name": name, "path": path}),
                           content_type="application/json")
    assert response.status_code == 400, response.json()
    return response.json()["fields"].get("path", [])


@pytest.mark.parametrize("spelling", ["plain", "double slashes", "dot segments", "trailing slash",
                                      "dot-dot from own folder", "dot-dot through a missing folder"])
def test_another_team_cannot_register_a_teams_teacher_through_the_page(charlie_client, other, checkpoint,
                                                                      teacher_root, teacher_dir, spelling):
    path = spellings(Path(teacher_root), Path(teacher_dir))[spelling]
    assert register_page(charlie_client, other, path) == [ownership.outside_message(other, path)]
    assert not Checkpoint.objects.filter(team=other).exists()


@pytest.mark.parametrize("spelling", ["plain", "double slashes", "dot segments", "dot-dot from own folder"])
def test_another_team_cannot_register_a_teams_teacher_through_the_api(charlie_api, other, checkpoint, teacher_root,
                                                                     teacher_dir, spelling):
    path = spellings(Path(teacher_root), Path(teacher_dir))[spelling]
    assert register_api(charlie_api, path) == [ownership.outside_message(other, path)]
    assert not Checkpoint.objects.filter(team=other).exists()


def test_a_symlink_in_ones_own_folder_to_another_teams_teacher_is_refused(charlie_client, charlie_api, other,
                                                                          teacher_dir, scratch):
    link = str(scratch("other/alias-{test}", link_to=Path(teacher_dir)))
    assert register_page(charlie_client, other, link) == [ownership.outside_message(other, link)]
    assert register_api(charlie_api, link) == [ownership.outside_message(other, link)]
    assert not Checkpoint.objects.filter(team=other).exists()


def test_an_unregistered_directory_in_another_teams_folder_is_refused_too(charlie_client, other, teacher_dir):
    # No Acme row exists: the folder alone decides.
    assert register_page(charlie_client, other, str(teacher_dir)) == [
        ownership.outside_message(other, str(teacher_dir))]


def test_everything_outside_the_teams_folder_gets_one_message(charlie_client, other, teacher_root, teacher_dir,
                                                              scratch):
    junk = scratch("acme/junk-{test}", files={"README.txt": "not a model"})
    outside = {
        "another team's teacher": str(teacher_dir),
        "a directory without config.json": str(junk),
        "a missing directory": str(Path(teacher_root) / "acme" / "no-such-model"),
        "a file": "/etc/passwd",
        "a system directory": "/etc",
        "the server's working directory": "/proc/self/cwd",
        "a missing top-level directory": "/no/such/place",
        "the root itself": str(teacher_root),
    }
    answers = {what: register_page(charlie_client, other, path) for what, path in outside.items()}
    shapes = {what: [m.replace(ownership.as_typed(outside[what]), "PATH") for m in messages]
              for what, messages in answers.items()}
    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes
    assert not any("does not exist" in m or "config.json" in m for ms in answers.values() for m in ms)


def test_a_missing_directory_in_ones_own_folder_is_named_as_missing(alice_client, acme, teacher_root):
    path = str(Path(teacher_root) / "acme" / "no-such-model")
    assert register_page(alice_client, acme, path) == [f"{path!r} does not exist or is not a directory."]


def test_messages_name_the_path_as_typed_never_as_resolved(alice_client, acme, teacher_root, scratch):
    junk = scratch("acme/junk-{test}", files={"README.txt": "not a model"})
    alias = scratch("acme/alias-{test}", link_to=junk)
    typed = f"{teacher_root}//acme/./{alias.name}"
    [message] = register_page(alice_client, acme, typed)
    assert "has no config.json" in message and typed in message and str(junk) not in message
    for path in ("/proc/self/cwd", "/proc/self/cwd/var", "/proc/self/root/etc"):
        [message] = register_page(alice_client, acme, path)
        assert path in message and os.getcwd() not in message.replace(str(teacher_root), "")


def test_a_path_another_team_registered_first_stays_theirs_inside_ones_own_folder(charlie_client, other, acme, alice,
                                                                                  teacher_dir, teacher_info, scratch):
    # Acme registered this directory while its folder was called "other" (a slug that changed hands since).
    copy = scratch("other/old-bert-{test}")
    shutil.rmtree(copy)
    shutil.copytree(teacher_dir, copy)
    Checkpoint.objects.create(team=acme, name="old", path=str(copy), info=teacher_info, created_by=alice)
    for path in (str(copy), str(copy / "..")):  # the directory, and the folder holding it
        assert register_page(charlie_client, other, path) == [ownership.outside_message(other, path)]
    assert not Checkpoint.objects.filter(team=other).exists()


def test_a_team_registers_from_its_own_folder_and_the_stored_path_is_resolved(charlie_client, other, teacher_dir,
                                                                              scratch):
    mine = scratch("other/bert-{test}")
    shutil.rmtree(mine)
    shutil.copytree(teacher_dir, mine)
    response = charlie_client.post(URL, {"team": other.pk, "name": "mine", "path": f"{mine.parent}//./{mine.name}/"})
    assert response.status_code == 302
    assert Checkpoint.objects.get(team=other).path == str(mine)


def test_a_row_registered_before_the_folders_cannot_be_used_by_a_later_team(charlie_client, other, charlie,
                                                                            checkpoint, dataset_files):
    # Charlie registered Acme's teacher before this rule existed: his row stays, but using it is refused.
    stolen = Checkpoint.objects.create(team=other, name="stolen", path=checkpoint.path, info=checkpoint.info,
                                       created_by=charlie)
    data = Dataset.objects.create(team=other, name="mine", train_path=str(dataset_files["train"]),
                                  dev_path=str(dataset_files["dev"]), labels=["finance", "sports", "tech"])
    response = charlie_client.post("/experiments/new/", {
        "name": "x", "team": other.pk, "teacher": stolen.pk, "dataset": data.pk, "student_type": "textcnn",
        "temperature": "2", "alpha": "0.8", "epochs": "1", "batch_size": "8", "learning_rate": "0.001",
        "max_length": "16"})
    assert response.status_code == 400
    assert response.context["form"].errors["teacher"] == [ownership.not_yours_message(stolen)]
    assert not other.experiments.exists()


def test_uploaded_archives_land_in_the_owning_teams_folder(alice, charlie, acme, other, teacher_root, teacher_dir):
    files = {p.name: p.read_bytes() for p in Path(teacher_dir).iterdir() if p.is_file()}
    alice_client = Client()
    for user, team in ((alice, acme), (charlie, other)):
        client = Client()
        client.force_login(user)
        client.post(URL, {"team": team.pk, "name": "uploaded", "path": "",
                          "archive": SimpleUploadedFile("t.zip", zip_bytes(files))})
    acme_path = Path(Checkpoint.objects.get(team=acme, name="uploaded").path)
    other_path = Path(Checkpoint.objects.get(team=other, name="uploaded").path)
    assert acme_path.parent == Path(teacher_root) / "acme" / "uploads"
    assert other_path.parent == Path(teacher_root) / "other" / "uploads"
    # Acme cannot register Other's upload by its path.
    alice_client.force_login(alice)
    assert register_page(alice_client, acme, str(other_path)) == [ownership.outside_message(acme, str(other_path))]


def test_uploaded_datasets_land_in_the_owning_teams_folder(charlie_client, other, settings):
    response = charlie_client.post("/datasets/new/", {
        "team": other.pk, "name": "headlines", "format": "tsv", "text_column": "0", "label_column": "1",
        "train_file": SimpleUploadedFile("t.tsv", tsv(TRAIN_ROWS).encode()),
        "dev_file": SimpleUploadedFile("d.tsv", tsv(DEV_ROWS).encode())})
    assert response.status_code == 302
    dataset = Dataset.objects.get(team=other)
    assert Path(dataset.train_path).parent.parent == Path(settings.DATASET_ROOT) / "other"


def test_a_team_whose_slug_cannot_name_a_folder_registers_nothing(client, charlie, other, teacher_root):
    other.slug = ".."
    other.save(update_fields=["slug"])
    client.force_login(charlie)
    [message] = register_page(client, other, str(teacher_root))
    assert "cannot name a folder" in message and not Checkpoint.objects.exists()


def test_try_it_refuses_to_run_a_teacher_another_team_registered_first(charlie_client, other, charlie, checkpoint,
                                                                       student_export, dataset_files):
    from webapp.experiments.models import Experiment

    stolen = Checkpoint.objects.create(team=other, name="stolen", path=checkpoint.path, info=checkpoint.info)
    data = Dataset.objects.create(team=other, name="mine", train_path=str(dataset_files["train"]),
                                  labels=["finance", "sports", "tech"])
    run = Experiment.objects.create(
        team=other, owner=charlie, name="x", teacher=stolen, dataset=data, student_type="textcnn",
        config={"teacher": {"path": checkpoint.path}, "data": {"max_length": 16}},
        status=Experiment.Status.SUCCEEDED, results={"export_dir": str(student_export)})
    response = charlie_client.post(f"/experiments/{run.pk}/predict.json", {"texts": "bank cuts rates"})
    assert response.status_code == 409 and "belongs to another team" in response.json()["error"]


def test_a_teacher_gone_from_disk_is_reported_without_the_servers_working_directory(alice_client, form_data,
                                                                                   checkpoint, teacher_root):
    checkpoint.path = str(Path(teacher_root) / "acme" / "deleted-bert")
    checkpoint.save(update_fields=["path"])
    response = alice_client.post("/experiments/new/", form_data)
    [message] = response.context["form"].errors["teacher"]
    assert "does not exist" in message and os.getcwd() not in message


def test_the_audit_command_names_rows_another_team_registered_first(checkpoint, other, charlie):
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("checkpoint_owners", stdout=out)
    assert "Every checkpoint belongs to its team." in out.getvalue()
    stolen = Checkpoint.objects.create(team=other, name="stolen", path=checkpoint.path, info=checkpoint.info)
    with pytest.raises(CommandError, match="1 checkpoint"):
        call_command("checkpoint_owners", stdout=(out := io.StringIO()))
    assert f"#{stolen.pk} Other / stolen: UNUSABLE" in out.getvalue() and "registered first by Acme" in out.getvalue()
