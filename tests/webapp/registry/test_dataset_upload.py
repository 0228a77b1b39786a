"""Uploading a dataset: files are read with distill_core.data; a refusal leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import DEV_ROWS, LABELS, TRAIN_ROWS, tsv
from webapp.registry.models import Dataset

URL = "/datasets/new/"


def upload(name: str, content: str | bytes) -> SimpleUploadedFile:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/plain")


def post(client, team, **fields):
    data = {"team": team.pk, "name": "headlines", "format": "tsv", "text_column": "0", "label_column": "1",
            "label_names": "", "train_file": upload("train.tsv", tsv(TRAIN_ROWS))}
    data.update(fields)
    return client.post(URL, {k: v for k, v in data.items() if v is not None})


def stored_files(settings) -> list[Path]:
    root = Path(settings.DATASET_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_refused(response, settings, field: str, text: str, status: int = 400):
    assert response.status_code == status
    errors = response.context["form"].errors
    assert any(text in e for e in errors.get(field, [])), errors
    assert Dataset.objects.count() == 0
    assert stored_files(settings) == []
    root = Path(settings.DATASET_ROOT)
    assert not root.exists() or not any(p.is_dir() and any(p.iterdir()) for p in root.glob("*/*"))


def test_the_form_renders(alice_client, acme):
    response = alice_client.get(URL)
    assert response.status_code == 200 and b'enctype="multipart/form-data"' in response.content


def test_it_uploads_a_dataset_and_takes_the_sorted_labels_of_train(alice_client, alice, acme, settings):
    response = post(alice_client, acme, dev_file=upload("dev.tsv", tsv(DEV_ROWS)))
    dataset = Dataset.objects.get()
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.team == acme and dataset.created_by == alice
    assert dataset.labels == sorted(LABELS)
    assert dataset.stats["train"] == {"rows": 18, "class_counts": [6, 6, 6]}
    assert dataset.stats["dev"] == {"rows": 6, "class_counts": [2, 2, 2]}
    assert "test" not in dataset.stats and dataset.test_path == ""
    train = Path(dataset.train_path)
    assert train.is_file() and train.name == "train.tsv"
    assert train.parent.parent == Path(settings.DATASET_ROOT) / acme.slug
    assert Path(dataset.dev_path).parent == train.parent


def test_it_keeps_the_label_order_it_is_given(alice_client, acme):
    post(alice_client, acme, label_names="tech\nsports\r\n\nfinance\n")
    dataset = Dataset.objects.get()
    assert dataset.labels == ["tech", "sports", "finance"]
    assert dataset.stats["train"]["class_counts"] == [6, 6, 6]


def test_it_reads_csv_with_a_header_and_named_columns(alice_client, acme):
    rows = "label,premise,hypothesis\n" + "".join(
        f'{"yes" if i % 2 else "no"},"a, quoted premise {i}",hypothesis {i}\n' for i in range(10))
    post(alice_client, acme, format="csv", has_header="on", text_column="premise", text_pair_column="hypothesis",
         label_column="label", train_file=upload("train.csv", rows))
    dataset = Dataset.objects.get()
    assert dataset.labels == ["no", "yes"] and dataset.text_pair_column == "hypothesis"
    assert dataset.data_config()["text_column"] == "premise"
    assert Path(dataset.train_path).name == "train.csv"


def test_it_reads_jsonl(alice_client, acme):
    lines = "".join(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n" for text, label in TRAIN_ROWS)
    post(alice_client, acme, format="jsonl", text_column="text", label_column="label",
         train_file=upload("train.jsonl", lines))
    assert Dataset.objects.get().stats["train"]["rows"] == len(TRAIN_ROWS)


def test_the_detail_page_shows_splits_counts_chart_and_preview(alice_client, dataset):
    response = alice_client.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "vendor/plotly.min.js" in html and 'id="class-counts"' in html and "js/dataset.js" in html
    assert "stocks rally as banks report profits" in html
    assert html.count('<td class="text-cell">') == len(TRAIN_ROWS)
    chart = response.context["chart"]
    assert chart["labels"] == LABELS and [s["name"] for s in chart["splits"]] == ["train", "dev"]


def test_the_preview_stops_at_twenty_rows(alice_client, acme):
    post(alice_client, acme, train_file=upload("train.tsv", tsv(TRAIN_ROWS * 3)))
    response = alice_client.get(f"/datasets/{Dataset.objects.get().pk}/")
    assert len(response.context["preview"]) == 20


def test_the_detail_page_survives_deleted_files(alice_client, dataset):
    Path(dataset.train_path).unlink()
    response = alice_client.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200 and b"does not exist" in response.content


def test_the_list_shows_rows_per_split(alice_client, dataset):
    response = alice_client.get("/datasets/")
    assert b"headlines" in response.content and b">18<" in response.content


def test_it_refuses_a_file_that_is_not_utf8(alice_client, acme, settings):
    bad = tsv(TRAIN_ROWS).encode("utf-8") + "café\tfinance\n".encode("latin-1")
    assert_refused(post(alice_client, acme, train_file=upload("train.tsv", bad)), settings, "train_file",
                   "not UTF-8")


def test_it_refuses_an_empty_file(alice_client, acme, settings):
    assert_refused(post(alice_client, acme, train_file=upload("train.tsv", b"")), settings, "train_file", "empty")


def test_it_refuses_a_blank_dev_file(alice_client, acme, settings):
    response = post(alice_client, acme, dev_file=upload("dev.tsv", "\n  \n"))
    assert_refused(response, settings, "dev_file", "empty")


def test_it_refuses_a_ragged_row(alice_client, acme, settings):
    ragged = tsv(TRAIN_ROWS[:5]) + "one\ttoo\tmany\n" + tsv(TRAIN_ROWS[5:])
    assert_refused(post(alice_client, acme, train_file=upload("train.tsv", ragged)), settings, "train_file",
                   "line 6: expected 2 columns but found 3")


def test_it_refuses_an_unknown_label_in_the_given_list(alice_client, acme, settings):
    response = post(alice_client, acme, label_names="finance\nsports")
    assert_refused(response, settings, "label_names", "label 'tech' is neither")


def test_it_refuses_a_dev_label_the_train_split_lacks(alice_client, acme, settings):
    response = post(alice_client, acme, dev_file=upload("dev.tsv", tsv(DEV_ROWS) + "weird row\tweather\n"))
    assert_refused(response, settings, "dev_file", "label 'weather' is neither")


def test_it_refuses_a_missing_header_column(alice_client, acme, settings):
    content = "sentence\tlabel\n" + tsv(TRAIN_ROWS)
    response = post(alice_client, acme, has_header="on", text_column="text", label_column="label",
                    train_file=upload("train.tsv", content))
    assert_refused(response, settings, "text_column", "no column 'text'")


def test_it_refuses_a_column_index_past_the_row(alice_client, acme, settings):
    assert_refused(post(alice_client, acme, label_column="5"), settings, "label_column", "only 2 column(s)")


def test_it_refuses_a_label_column_with_one_value(alice_client, acme, settings):
    rows = "".join(f"text {i}\tsame\n" for i in range(5))
    response = post(alice_client, acme, train_file=upload("train.tsv", rows))
    assert_refused(response, settings, "label_column", "only one label value")


@pytest.mark.parametrize(("names", "text"), [("a\na\nb", "repeated: a"), ("solo", "at least two labels")])
def test_it_refuses_bad_label_lists(alice_client, acme, settings, names, text):
    assert_refused(post(alice_client, acme, label_names=names), settings, "label_names", text)


def test_it_refuses_a_duplicate_name(alice_client, acme, dataset, settings):
    response = post(alice_client, acme, name=dataset.name)
    assert "already has a dataset" in response.context["form"].errors["name"][0]
    assert Dataset.objects.count() == 1 and stored_files(settings) == []


def test_it_refuses_another_teams_team(alice_client, other, settings):
    assert_refused(post(alice_client, other), settings, "team", "Select a valid choice")


def test_the_client_file_name_is_never_used(alice_client, acme, settings):
    post(alice_client, acme, train_file=upload("../../etc/evil.tsv", tsv(TRAIN_ROWS)))
    dataset = Dataset.objects.get()
    assert Path(dataset.train_path).name == "train.tsv"
    assert Path(dataset.train_path).resolve().is_relative_to(Path(settings.DATASET_ROOT).resolve())


def test_it_refuses_a_file_over_the_size_limit_while_it_streams(alice_client, acme, settings):
    settings.MAX_DATASET_UPLOAD_MB = 1
    big = tsv(TRAIN_ROWS) * (1_200_000 // len(tsv(TRAIN_ROWS)))
    assert 2**20 < len(big) < 2 * 2**20  # over the limit, under the Content-Length slack
    response = post(alice_client, acme, train_file=upload("train.tsv", big))
    assert_refused(response, settings, "train_file", "over the limit of 1 MB per split", status=413)


def test_the_preview_reads_only_the_head_of_a_large_train_file(alice_client, acme, monkeypatch):
    from distill_core import data

    post(alice_client, acme, train_file=upload("train.tsv", tsv(TRAIN_ROWS * 3)))
    dataset = Dataset.objects.get()
    with open(dataset.train_path, "a", encoding="utf-8") as fh:  # grow it to ~10 MB after registration
        fh.write(tsv(TRAIN_ROWS * 20_000))
    assert Path(dataset.train_path).stat().st_size > 5_000_000
    monkeypatch.setattr(data.Path, "read_bytes", lambda self: pytest.fail(f"read all of {self.name}"))
    response = alice_client.get(f"/datasets/{dataset.pk}/")
    preview = response.context["preview"]
    expected = [{"text": text, "pair": None, "label": label} for text, label in (TRAIN_ROWS * 3)[:20]]
    assert response.status_code == 200 and preview == expected
