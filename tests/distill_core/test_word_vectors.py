"""Word-vector files (word2vec/GloVe text) are read within bounds; a hostile file gets a clear error, not a guess."""

from __future__ import annotations

import pytest
import torch

from distill_core.word_vectors import WordVectorError, describe_word_vectors, read_word_vectors


def write(tmp_path, content: bytes | str):
    path = tmp_path / "vectors.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_glove_and_word2vec_layouts_read_alike(tmp_path):
    glove = write(tmp_path, "the 0.1 -0.2 3e-1\ncity 1 2 3\n\n")
    vectors, dim = read_word_vectors(glove)
    assert dim == 3 and set(vectors) == {"the", "city"}
    assert torch.allclose(vectors["the"], torch.tensor([0.1, -0.2, 0.3]))
    (tmp_path / "w2v").mkdir()
    w2v = write(tmp_path / "w2v", "2 3\nthe 0.1 -0.2 3e-1\ncity 1 2 3\n")
    assert read_word_vectors(w2v, wanted={"city"})[0].keys() == {"city"}
    assert describe_word_vectors(w2v) == {"count": 2, "dim": 3}


@pytest.mark.parametrize(("content", "message"), [
    (b"a 1 2\nb 1 2 3\n", "line 2 has 3 values where every vector has 2"),
    (b"a 1 2\nb 1 x\n", "line 2: 'x' is not a number"),
    (b"a 1 2\nb 1 nan\n", "line 2 holds inf or NaN"),
    (b"a 1 2\nb \xff\xfe 2\n", "line 2 is not UTF-8"),
    (b"a 1 2\x00\n", "NUL byte"),
    (b"5 2\na 1 2\n", "header promises 5 vectors but it holds 1"),
    (b"2 99999\na 1 2\n", "vectors of 99999 values"),
    (b"\n\n", "holds no vectors"),
])
def test_hostile_files_are_refused_naming_the_line(tmp_path, content, message):
    with pytest.raises(WordVectorError, match=message) as err:
        describe_word_vectors(write(tmp_path, content))
    assert err.value.field == "student.embedding_file"


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path):
    path = write(tmp_path, b"a 1 2\n" + b"b" + b" 1" * 200_000 + b"\n")
    with pytest.raises(WordVectorError, match="line 2 is longer than 65,536 bytes"):
        read_word_vectors(path)


def test_bad_values_of_unwanted_words_are_only_checked_when_asked(tmp_path):
    path = write(tmp_path, "a 1 2\nb 1 oops\n")
    assert read_word_vectors(path, wanted={"a"})[0].keys() == {"a"}  # shape checked, values skipped: fast
    with pytest.raises(WordVectorError, match="'oops' is not a number"):
        read_word_vectors(path, wanted={"a"}, check_all=True)


def test_row_and_file_bounds(tmp_path):
    path = write(tmp_path, "".join(f"w{i} 1 2\n" for i in range(5)))
    with pytest.raises(WordVectorError, match="more than 3 vectors"):
        read_word_vectors(path, max_rows=3)
    with pytest.raises(WordVectorError, match="does not exist"):
        read_word_vectors(tmp_path / "missing.txt")
