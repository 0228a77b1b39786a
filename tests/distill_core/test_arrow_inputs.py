"""Parquet files and Hugging Face save_to_disk directories read like TSV, streamed or whole."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_core.config import DataConfig, ExperimentConfig
from distill_core.data import read_head, read_split
from distill_core.distiller import run
from distill_core.errors import DatasetError
from distill_core.readers import iter_chunks
from tests.conftest import demo_labels
from tests.distill_core.conftest import ListSink


def tsv_rows(path: Path) -> tuple[list[str], list[int]]:
    rows = [line.rsplit("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for t, _ in rows], [int(y) for _, y in rows]


def write_parquet(source: Path, target: Path, row_group_size: int = 50) -> Path:
    texts, labels = tsv_rows(source)
    pq.write_table(pa.table({"title": texts, "label": labels}), target, row_group_size=row_group_size)
    return target


def write_hf(source: Path, target: Path) -> Path:
    from datasets import Dataset

    texts, labels = tsv_rows(source)
    Dataset.from_dict({"title": texts, "label": [demo_labels()[y] for y in labels]}).save_to_disk(str(target))
    return target


def test_parquet_and_save_to_disk_read_as_the_tsv_does(thucnews_slice, tmp_path):
    labels = demo_labels()
    tsv = read_split(thucnews_slice["train"], DataConfig(), labels)
    for format, path in (("parquet", write_parquet(thucnews_slice["train"], tmp_path / "train.parquet")),
                         ("hf", write_hf(thucnews_slice["train"], tmp_path / "train_hf"))):
        config = DataConfig(format=format, text_column="title", label_column="label")
        split = read_split(path, config, labels)
        assert split.texts == tsv.texts and split.labels == tsv.labels, format
        streamed = [row for chunk in iter_chunks(path, config, labels, "train", rows=64) for row in zip(*chunk[::2], strict=True)]
        assert streamed == list(zip(tsv.texts, tsv.labels, strict=True))
        head = read_head(path, config, labels, rows=5)
        assert head.texts == tsv.texts[:5]
        by_index = DataConfig(format=format, text_column=0, label_column=1)  # schema positions work too
        assert read_split(path, by_index, labels).texts == tsv.texts


def test_a_run_on_parquet_equals_the_run_on_tsv(make_config, thucnews_slice, tmp_path):
    raw = make_config(train={"epochs": 1}, output_dir=None)
    tsv_sink, parquet_sink = ListSink(), ListSink()
    tsv = run(ExperimentConfig.from_dict(raw), sink=tsv_sink)
    files = {name: str(write_parquet(path, tmp_path / f"{name}.parquet")) for name, path in thucnews_slice.items()}
    parquet = run(ExperimentConfig.from_dict({**raw, "data": {**raw["data"], **files, "format": "parquet",
                                                              "text_column": "title", "label_column": "label"}}),
                  sink=parquet_sink)
    assert [p["metrics"] for p in tsv_sink.of("step")] == [p["metrics"] for p in parquet_sink.of("step")]
    assert tsv["student"] == parquet["student"]


def test_arrow_refusals_name_the_field_and_the_row(thucnews_slice, tmp_path):
    labels = demo_labels()
    path = write_parquet(thucnews_slice["train"], tmp_path / "train.parquet")
    with pytest.raises(DatasetError, match="no column 'text'") as err:
        read_split(path, DataConfig(format="parquet", text_column="text", label_column="label"), labels)
    assert err.value.field == "data.text_column"
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"title": ["fine", None], "label": [0, 1]}), nulls)
    with pytest.raises(DatasetError, match="row 2: column 'title' is empty"):
        read_split(nulls, DataConfig(format="parquet", text_column="title", label_column="label"), labels)
    from datasets import Dataset, DatasetDict

    both = DatasetDict({"train": Dataset.from_dict({"title": ["a"], "label": [0]})})
    both.save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(DatasetError, match="is a DatasetDict .* give one split's directory") as err:
        read_split(tmp_path / "dict", DataConfig(format="hf", text_column="title", label_column="label"), labels)
    assert err.value.field == "data.train"
    with pytest.raises(DatasetError, match="cannot be read as a Parquet file"):
        read_split(thucnews_slice["train"], DataConfig(format="parquet"), labels)
