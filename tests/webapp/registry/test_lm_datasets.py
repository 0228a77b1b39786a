"""Language-model datasets: uploaded with their column mapping, previewed (rendered, bounded), kept to LM runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distill_core.lm.testing import make_tiny_lm, write_toy_data
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

URL = "/datasets/new/"


def upload(name: str, content: str | bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def post(client, team, train: str, **fields):
    data = {"team": team.pk, "name": "qa", "kind": "lm", "format": "jsonl", "lm_format": "auto",
            "train_file": upload("anything.jsonl", train), **fields}
    return client.post(URL, data)


def stored_files(settings) -> list[Path]:
    root = Path(settings.DATASET_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def lm_checkpoint(acme, alice, teacher_root) -> Checkpoint:
    path = teacher_root / "acme" / "tiny-gpt2"
    if not path.is_dir():
        make_tiny_lm(path, "gpt2", layers=4)
    return Checkpoint.objects.create(team=acme, name="tiny-gpt2", path=str(path), info={"num_labels": 2},
                                     created_by=alice)


def test_it_uploads_prompt_response_pairs_with_rows_and_word_lengths(alice_client, acme, tmp_path):
    train = write_toy_data(tmp_path / "t.jsonl", 30, seed=1).read_text()
    response = post(alice_client, acme, train, dev_ratio="0.2", split_seed="3")
    dataset = Dataset.objects.get()
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.kind == Dataset.Kind.LM and dataset.labels == []
    assert dataset.lm_columns == {"data_format": "auto", "prompt_key": "prompt", "response_key": "response",
                                  "messages_key": "messages", "text_key": "text"}
    assert dataset.stats["train"] == {"rows": 24, "formats": {"prompt_response": 24}}
    assert dataset.stats["dev"]["rows"] == 6
    lengths = dataset.stats["lengths"]
    assert lengths["unit"] == "words" and sum(lengths["response"]["counts"]) == 24
    assert lengths["prompt"]["edges"][:2] == [6, 7]  # "what does the <colour> <animal> ?"


def test_it_maps_other_keys_for_chat_rows(alice_client, acme):
    rows = [{"conv": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "hello"}]}
            for i in range(4)]
    response = post(alice_client, acme, jsonl(rows), lm_format="messages", messages_key="conv")
    assert response.status_code == 302, response.context["form"].errors
    dataset = Dataset.objects.get()
    assert dataset.lm_columns["messages_key"] == "conv" and dataset.stats["train"]["formats"] == {"messages": 4}


def test_it_uploads_plain_text(alice_client, acme):
    response = post(alice_client, acme, "the cat sees the dog\n\nthe bird eats\n", format="txt")
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    assert Path(dataset.train_path).name == "train.txt" and dataset.stats["train"]["rows"] == 2


def test_a_row_without_the_mapped_key_is_refused_on_that_key(alice_client, acme, settings):
    response = post(alice_client, acme, jsonl([{"prompt": "a", "answer": "b"}]), lm_format="prompt_response")
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "line 1" in errors["response_key"][0] and "'response'" in errors["response_key"][0]
    assert not Dataset.objects.exists() and stored_files(settings) == []


def test_a_line_that_is_not_json_is_refused_on_its_file(alice_client, acme, settings):
    response = post(alice_client, acme, '{"text": "ok"}\n{"text": \n', test_file=upload("t.jsonl", '{"text": "x"}\n'))
    assert "anything" not in response.content.decode()  # our own file names, never the client's
    assert "train.jsonl line 2 is not JSON" in response.context["form"].errors["train_file"][0]
    assert stored_files(settings) == []


def test_plain_text_needs_the_language_model_kind(alice_client, acme):
    response = post(alice_client, acme, "some text\n", kind="classification", format="txt", text_column="0",
                    label_column="1")
    assert "Language model" in response.context["form"].errors["format"][0]


def test_an_lm_dataset_is_jsonl_or_text_and_has_no_labels(alice_client, acme):
    response = post(alice_client, acme, "a\tb\n", format="tsv", label_names="x\ny")
    errors = response.context["form"].errors
    assert "JSONL or plain text" in errors["format"][0] and "no labels" in errors["label_names"][0]


def test_the_api_uploads_an_lm_dataset(api, acme, tmp_path):
    train = write_toy_data(tmp_path / "t.jsonl", 6, kind="text").read_text()
    response = api.post("/api/datasets/", {"name": "docs", "kind": "lm", "format": "jsonl",
                                           "train_file": upload("t.jsonl", train)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "lm" and body["stats"]["train"]["formats"] == {"text": 6}


def test_the_page_previews_plain_prompts_and_word_histograms(alice_client, acme, tmp_path):
    post(alice_client, acme, write_toy_data(tmp_path / "t.jsonl", 30, seed=1, kind="messages").read_text())
    dataset = Dataset.objects.get()
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="lm-preview"' in html and "user: what does the" in html
    assert 'id="lm-lengths-data"' in html and "words of every train row" in html
    assert "vendor/plotly.min.js" in html and "js/lm_dataset.js" in html


def test_a_chosen_checkpoint_renders_its_chat_template_and_counts_tokens(alice_client, acme, tmp_path,
                                                                         lm_checkpoint):
    post(alice_client, acme, write_toy_data(tmp_path / "t.jsonl", 30, seed=1, kind="messages").read_text())
    dataset = Dataset.objects.get()
    response = alice_client.get(f"/datasets/{dataset.pk}/?checkpoint={lm_checkpoint.pk}")
    html = response.content.decode()
    assert "&lt;s&gt; user : what does the" in html and "&lt;s&gt; assistant :" in html  # the template's markers
    lengths = json.loads(html.split('id="lm-lengths-data" type="application/json">')[1].split("</script>")[0])
    assert lengths["unit"] == "tokens" and lengths["rows"] == 30 and lengths["checkpoint"] == "tiny-gpt2"
    assert "Prompt tokens" in html


def test_a_checkpoint_of_another_team_is_not_found(alice_client, acme, other, tmp_path, lm_checkpoint):
    post(alice_client, acme, write_toy_data(tmp_path / "t.jsonl", 4).read_text())
    dataset = Dataset.objects.get()
    foreign = Checkpoint.objects.create(team=other, name="theirs", path=lm_checkpoint.path, info={})
    assert alice_client.get(f"/datasets/{dataset.pk}/?checkpoint={foreign.pk}").status_code == 404
    assert alice_client.get(f"/datasets/{dataset.pk}/?checkpoint=x").status_code == 404


def test_the_preview_reads_only_the_head_of_a_large_file(alice_client, acme, tmp_path):
    post(alice_client, acme, write_toy_data(tmp_path / "t.jsonl", 4).read_text())
    dataset = Dataset.objects.get()
    with open(dataset.train_path, "a") as fh:  # 3 MB more, and a broken line past the preview's budget
        fh.write(jsonl([{"prompt": "p" * 100, "response": "r" * 100}] * 15_000) + "not json\n")
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "first 20 train rows" in html and "alert-error" not in html


@pytest.mark.parametrize("run_kind,dataset_kind,text", [
    ("lm_distill", "classification", "needs a language-model dataset"),
    ("distill", "lm", "is a language-model dataset"),
])
def test_the_form_takes_only_datasets_of_the_run_kind(alice_client, acme, form_data, dataset, run_kind,
                                                      dataset_kind, text):
    Dataset.objects.filter(pk=dataset.pk).update(kind=dataset_kind)
    response = alice_client.post("/experiments/new/", {**form_data, "kind": run_kind})
    assert response.status_code == 400
    assert text in response.context["form"].errors["dataset"][0]
    assert not Experiment.objects.exists()


def test_the_dataset_menu_marks_each_kind(alice_client, checkpoint, dataset):
    html = alice_client.get("/experiments/new/").content.decode()
    assert re.search(rf'<option value="{dataset.pk}"[^>]* data-kind="classification"', html)


def test_a_run_reads_the_dataset_with_its_column_mapping(alice_client, acme, lm_checkpoint):
    rows = [{"conv": [{"role": "user", "content": "what does the cat ?"}, {"role": "assistant", "content": "the cat"}]}
            for _ in range(8)]
    post(alice_client, acme, jsonl(rows), messages_key="conv")
    dataset = Dataset.objects.get()
    response = alice_client.post("/experiments/new/", {
        "name": "lm", "team": acme.pk, "teacher": lm_checkpoint.pk, "dataset": dataset.pk, "kind": "lm_distill",
        "student_type": "textcnn", "temperature": "1", "alpha": "0.5", "epochs": "1", "batch_size": "8",
        "learning_rate": "0.001", "max_length": "24"})
    assert response.status_code == 302, response.context["form"].errors
    config = Experiment.objects.get().config
    assert config["data"]["train"] == dataset.train_path and config["data"]["labels"] == []
    assert config["lm"]["messages_key"] == "conv" and config["lm"]["data_format"] == "auto"


def test_the_list_marks_language_model_datasets(alice_client, acme, tmp_path):
    post(alice_client, acme, write_toy_data(tmp_path / "t.jsonl", 4).read_text())
    html = alice_client.get("/datasets/").content.decode()
    assert '<span class="tag">language model</span>' in html
