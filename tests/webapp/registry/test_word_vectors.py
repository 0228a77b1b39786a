"""Word-vector files are uploaded per team, checked line by line, and chosen (with the other embedding-start and
neighbour-augmentation options) on the new-experiment form; another team's file is never usable."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from distill_core.config import ExperimentConfig
from webapp.experiments.models import Experiment
from webapp.registry.models import WordVectors

URL = "/word-vectors/"
GOOD = b"3 4\nthe 0.1 0.2 0.3 0.4\ncity 1 0 0 0\ntown 0 1 0 0\n"


def upload(client, team, name: str = "glove-tiny", content: bytes = GOOD):
    return client.post(URL, {"team": team.pk, "name": name,
                             "file": SimpleUploadedFile("vectors.txt", content, content_type="text/plain")})


def test_an_upload_is_checked_and_registered_in_the_teams_folder(alice_client, acme, settings):
    response = upload(alice_client, acme)
    assert response.status_code == 302
    row = WordVectors.objects.get()
    assert (row.team, row.name, row.count, row.dim) == (acme, "glove-tiny", 3, 4)
    assert Path(row.path).is_relative_to(Path(settings.DATASET_ROOT) / "acme" / "vectors")
    page = alice_client.get(URL)
    assert b"glove-tiny" in page.content


def test_a_hostile_file_is_refused_on_its_field_and_leaves_nothing(alice_client, acme, settings):
    response = upload(alice_client, acme, content=b"the 0.1 0.2\ncity 1 1e999x\n")
    assert response.status_code == 400
    assert "line 2: '1e999x' is not a number" in response.context["form"].errors["file"][0]
    response = upload(alice_client, acme, content=b"the 0.1 0.2\ncity 1 2 3\n")
    assert "line 2 has 3 values where every vector has 2" in response.context["form"].errors["file"][0]
    assert not WordVectors.objects.exists()
    vectors = Path(settings.DATASET_ROOT) / "acme" / "vectors"
    assert not vectors.exists() or not any(vectors.iterdir())


def test_the_form_sends_the_embedding_start_and_neighbour_options_to_the_config(alice_client, acme, form_data, wake):
    upload(alice_client, acme)
    row = WordVectors.objects.get()
    response = alice_client.post("/experiments/new/", {
        **form_data, "student_vocab": "word", "embedding_init": "file", "word_vectors": row.pk, "augment": "on",
        "augment_replace": "teacher_neighbours", "augment_neighbours": "5"})
    assert response.status_code == 302, response.context["form"].errors
    config = ExperimentConfig.from_dict(Experiment.objects.get().config)
    assert (config.student.embedding_init, config.student.embedding_file) == ("file", str(Path(row.path).resolve()))
    assert (config.augment.replace, config.augment.neighbours) == ("teacher_neighbours", 5)
    from webapp.experiments.clone import clone_initial

    initial = clone_initial(Experiment.objects.get())
    assert (initial["word_vectors"], initial["embedding_init"], initial["augment_replace"]) == (
        row.pk, "file", "teacher_neighbours")


def test_the_teachers_embeddings_need_its_word_pieces(alice_client, form_data, wake):
    response = alice_client.post("/experiments/new/", {**form_data, "student_vocab": "char",
                                                       "embedding_init": "teacher"})
    assert response.status_code == 400
    assert "needs the teacher's word pieces" in response.context["form"].errors["embedding_init"][0]
    response = alice_client.post("/experiments/new/", {**form_data, "student_vocab": "teacher",
                                                       "embedding_init": "teacher"})
    assert response.status_code == 302
    assert Experiment.objects.get().config["student"]["embedding_init"] == "teacher"


def test_a_file_without_its_init_or_an_init_without_a_file_is_refused(alice_client, acme, form_data, wake):
    upload(alice_client, acme)
    response = alice_client.post("/experiments/new/", {**form_data, "student_vocab": "word", "embedding_init": "file"})
    assert "Choose a word-vector file" in response.context["form"].errors["word_vectors"][0]
    response = alice_client.post("/experiments/new/", {**form_data, "student_vocab": "word", "embedding_init": "random",
                                                       "word_vectors": WordVectors.objects.get().pk})
    assert "only read with embedding_init" in response.context["form"].errors["word_vectors"][0]
    assert not Experiment.objects.exists()


def test_another_teams_vectors_cannot_be_chosen(alice, charlie_client, acme, other, form_data):
    from webapp.registry.vectors import register_upload

    row = register_upload(team=acme, user=alice, name="glove-tiny", upload=SimpleUploadedFile("v.txt", GOOD))
    response = charlie_client.post("/experiments/new/", {**form_data, "team": other.pk, "student_vocab": "word",
                                                         "embedding_init": "file", "word_vectors": row.pk})
    assert response.status_code == 400
    assert "word_vectors" in response.context["form"].errors
    assert b"glove-tiny" not in charlie_client.get(URL).content


def test_a_row_whose_file_left_the_teams_folder_is_refused(alice_client, acme, form_data, tmp_path, wake):
    upload(alice_client, acme)
    outside = tmp_path / "elsewhere.txt"
    outside.write_bytes(GOOD)
    WordVectors.objects.update(path=str(outside))
    response = alice_client.post("/experiments/new/", {**form_data, "student_vocab": "word", "embedding_init": "file",
                                                       "word_vectors": WordVectors.objects.get().pk})
    assert response.status_code == 400
    assert "not a file of Acme's" in response.context["form"].errors["word_vectors"][0]
