"""storage.NewEntry: the one way the teacher cache, the LM top-k cache and the token stores put an entry in place."""

from __future__ import annotations

import pytest

from distill_core.storage import NewEntry


def test_an_entry_appears_whole_and_no_temp_directory_remains(tmp_path):
    with NewEntry(tmp_path, "abc123", "teacher cache") as tmp:
        (tmp / "meta.json").write_text("{}")
        assert not (tmp_path / "abc123").exists()  # readers see nothing until the rename
    assert (tmp_path / "abc123" / "meta.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["abc123"]


def test_the_second_builder_of_a_key_keeps_the_first_ones_entry(tmp_path):
    first, second = NewEntry(tmp_path, "k", "token store"), NewEntry(tmp_path, "k", "token store")
    (first.tmp / "meta.json").write_text("first")
    (second.tmp / "meta.json").write_text("second")
    assert first.commit() == second.commit() == tmp_path / "k"
    assert (tmp_path / "k" / "meta.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), NewEntry(tmp_path, "k", "teacher cache") as tmp:
        (tmp / "logits.npy").write_bytes(b"half")
        raise RuntimeError("the teacher pass gave 3 rows for 4 examples")
    assert list(tmp_path.iterdir()) == []
