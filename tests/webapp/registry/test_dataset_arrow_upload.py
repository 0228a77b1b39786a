"""Parquet files and HF save_to_disk archives upload like TSV: columns, ownership, limits, field errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import DEV_ROWS, LABELS, TRAIN_ROWS
from tests.webapp.registry.test_dataset_upload import URL, assert_refused
from webapp.registry.models import Dataset


def parquet_bytes(rows) -> bytes:
    table = pa.table({"headline": [t for t, _ in rows], "topic": [label for _, label in rows]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def hf_archive(rows, tmp_path: Path, name: str = "train") -> bytes:
    from datasets import Dataset as HFDataset

    directory = tmp_path / name
    HFDataset.from_dict({"headline": [t for t, _ in rows], "topic": [label for _, label in rows]}).save_to_disk(
        str(directory))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            archive.write(path, f"{name}/{path.relative_to(directory)}")
    return out.getvalue()


def post(client, team, format: str, train: bytes, **fields):
    data = {"team": team.pk, "name": "headlines", "format": format, "text_column": "headline",
            "label_column": "topic", "label_names": "",
            "train_file": SimpleUploadedFile(f"train.{format}", train, content_type="application/octet-stream")}
    data.update(fields)
    return client.post(URL, {k: v for k, v in data.items() if v is not None})


def test_a_parquet_dataset_uploads_with_named_columns_and_shows_its_rows(alice_client, acme):
    dev = SimpleUploadedFile("dev.parquet", parquet_bytes(DEV_ROWS))
    response = post(alice_client, acme, "parquet", parquet_bytes(TRAIN_ROWS), dev_file=dev)
    dataset = Dataset.objects.get()
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.labels == sorted(LABELS) and dataset.format == "parquet"
    assert dataset.stats["train"] == {"rows": 18, "class_counts": [6, 6, 6]}
    assert dataset.stats["dev"]["rows"] == 6 and Path(dataset.train_path).name == "train.parquet"
    page = alice_client.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200 and TRAIN_ROWS[0][0].encode() in page.content  # the preview reads the head


def test_a_save_to_disk_archive_uploads_and_is_read_from_its_arrow_files(alice_client, acme, tmp_path):
    response = post(alice_client, acme, "hf", hf_archive(TRAIN_ROWS, tmp_path))
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and dataset.format == "hf"
    train = Path(dataset.train_path)
    assert train.is_dir() and (train / "state.json").is_file()
    assert dataset.stats["train"] == {"rows": 18, "class_counts": [6, 6, 6]}


def test_a_missing_parquet_column_is_refused_on_its_field(alice_client, acme, settings):
    response = post(alice_client, acme, "parquet", parquet_bytes(TRAIN_ROWS), text_column="title")
    assert_refused(response, settings, "text_column", "no column 'title'")


def test_an_archive_without_state_json_is_refused_on_the_file_field(alice_client, acme, settings):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("train/data.arrow", b"not arrow")
    response = post(alice_client, acme, "hf", out.getvalue())
    assert_refused(response, settings, "train_file", "no state.json")


def test_a_save_to_disk_archive_over_the_upload_limit_unpacked_is_refused(alice_client, acme, settings, tmp_path):
    settings.MAX_DATASET_UPLOAD_MB = 1
    rows = [(f"{text} {'x' * 4000} {i}", label) for i, (text, label) in enumerate(TRAIN_ROWS * 20)]  # ~1.4 MB
    archive = hf_archive(rows, tmp_path)
    assert len(archive) < 2**20  # the archive itself fits; what it unpacks to does not
    response = post(alice_client, acme, "hf", archive)
    assert_refused(response, settings, "train_file", "unpacks to more than 1 MB (DISTILLERY_MAX_DATASET_UPLOAD_MB)")


def test_a_hold_out_ratio_is_refused_for_parquet(alice_client, acme, settings):
    response = post(alice_client, acme, "parquet", parquet_bytes(TRAIN_ROWS), dev_ratio="0.2")
    assert_refused(response, settings, "dev_ratio", "upload the dev/test splits")


def test_a_parquet_upload_for_another_team_is_refused(alice_client, other, settings):
    response = post(alice_client, other, "parquet", parquet_bytes(TRAIN_ROWS))
    assert response.status_code == 400 and "team" in response.context["form"].errors
    assert Dataset.objects.count() == 0
