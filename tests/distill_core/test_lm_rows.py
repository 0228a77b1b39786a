"""LM rows read a line at a time: the same row rules as a run, a bounded head, checked lines, histograms."""

from __future__ import annotations

import json

import pytest

from distill_core.errors import DatasetError
from distill_core.lm import rows
from distill_core.lm.data import Row, read_rows
from distill_core.lm.options import LMConfig
from distill_core.lm.testing import write_toy_data


@pytest.mark.parametrize("kind", ["prompt_response", "messages", "text"])
def test_the_streamed_rows_are_the_rows_a_run_reads(tmp_path, kind):
    path = write_toy_data(tmp_path / "t.jsonl", 12, kind=kind)
    assert list(rows.iter_rows(path, LMConfig())) == read_rows(path, LMConfig())


def test_the_head_stops_at_its_byte_budget(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "x" * 100}) + "\n" + "{broken\n")
    monkeypatch.setattr(rows, "HEAD_BYTES", 120)  # the first line is 115 bytes, the broken one 8 more
    assert rows.head(path, LMConfig(), 10) == [Row("", "x" * 100)]
    with pytest.raises(DatasetError, match="t.jsonl line 2 is not JSON"):
        list(rows.iter_rows(path, LMConfig()))


def test_a_line_with_a_nul_or_bad_utf8_names_its_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"fine\nbad \xff byte\n")
    with pytest.raises(DatasetError, match="t.txt line 2 is not UTF-8"):
        list(rows.iter_rows(path, LMConfig()))
    path.write_bytes(b"fine\nnul \x00\n")
    with pytest.raises(DatasetError, match="line 2 contains a NUL"):
        list(rows.iter_rows(path, LMConfig()))


def test_an_empty_file_has_no_examples(tmp_path):
    (tmp_path / "t.jsonl").write_text("\n\n")
    with pytest.raises(DatasetError, match="has no examples"):
        list(rows.iter_rows(tmp_path / "t.jsonl", LMConfig()))


def test_histograms_cover_every_length_in_equal_integer_bins():
    assert rows.histogram([]) == {"edges": [], "counts": []}
    assert rows.histogram([3, 3, 3]) == {"edges": [3, 4], "counts": [3]}
    wide = rows.histogram(list(range(100)), bins=10)
    assert wide["edges"] == list(range(0, 101, 10)) and wide["counts"] == [10] * 10
    odd = rows.histogram([1, 50], bins=24)  # 50 values in 24 bins: width 3
    assert odd["edges"][0] == 1 and sum(odd["counts"]) == 2 and len(odd["counts"]) <= 24


def test_a_conversation_without_a_template_reads_as_role_lines():
    row = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "hello"}]}
    assert rows.plain_texts(row) == ("system: be brief\nuser: hi", "hello")
