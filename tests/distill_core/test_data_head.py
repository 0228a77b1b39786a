"""A preview reads only the head of a data file, with the same rules as reading all of it."""

from __future__ import annotations

import pytest


def test_read_head_reads_the_first_rows_with_the_same_rules_as_read_split(tmp_path):
    from distill_core.config import DataConfig
    from distill_core.data import read_head, read_split

    path = tmp_path / "train.csv"
    rows = ["text,label"] + [f'"title {i}, with a comma",{"ab"[i % 2]}' for i in range(5000)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = DataConfig(format="csv", has_header=True, text_column="text", label_column="label")
    head = read_head(path, config, ["a", "b"], rows=7)
    full = read_split(path, config, ["a", "b"])
    assert head.texts == full.texts[:7] and head.labels == full.labels[:7]


def test_read_head_refuses_a_first_line_past_its_budget_without_reading_it(tmp_path):
    from distill_core.config import DataConfig
    from distill_core.data import read_head
    from distill_core.errors import DatasetError

    path = tmp_path / "train.tsv"
    path.write_bytes(b"x" * 3_000_000 + b"\ta\n")
    with pytest.raises(DatasetError, match="line 1 is longer than 1024 KB"):
        read_head(path, DataConfig(), ["a", "b"], rows=5)
