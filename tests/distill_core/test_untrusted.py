"""untrusted.loads: JSON from outside is refused with a message saying where, never with another error."""

from __future__ import annotations

import pytest

from distill_core.untrusted import MAX_DEPTH, UntrustedInput, check_tree, loads, text_problem


@pytest.mark.parametrize("text, message, path", [
    ('{"a": "x\\u0000"}', "a contains a NUL character.", ("a",)),
    ('{"a": [1, {"b": "\\ud800"}]}', "a[1].b contains an unpaired surrogate (U+D800)", ("a", 1, "b")),
    ('{"a\\udc00": 1}', "A key of the object contains an unpaired surrogate (U+DC00)", ()),
    ('{"a": NaN}', "a: NaN is not a number JSON allows", ("a",)),
    ('{"a": -1e400}', "a: -Infinity is not a number JSON allows", ("a",)),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply", ()),
    ('{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", f"nested deeper than {MAX_DEPTH} levels", ("a",)),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels", (0,)),
    ("9" * 5000, "more than 4,300 digits", ()),
    ("{nope", "Not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2).", ()),
    (b'"\xff"', "not UTF-8", ()),
])
def test_unkeepable_json_is_refused_with_where(text, message, path):
    with pytest.raises(UntrustedInput) as caught:
        loads(text)
    assert message in caught.value.message and caught.value.path == path


def test_a_root_prefixes_the_paths():
    with pytest.raises(UntrustedInput, match=r"stages\[0\]\.name contains a NUL") as caught:
        loads('[{"name": "\\u0000"}]', root=("stages",))
    assert caught.value.field == "stages"


def test_nesting_up_to_the_limit_is_fine():
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_good_json_comes_back_unchanged():
    value = {"名前": ["🚀 \U0001F600", 1.5, None, True, {"n": 10**100}]}
    assert loads('{"名前": ["🚀 \\ud83d\\ude00", 1.5, null, true, {"n": ' + str(10**100) + "}]}") == value
    check_tree(value)


def test_text_problem_names_nul_and_lone_surrogates_only():
    assert text_problem("plain 中文 🚀") is None
    assert text_problem("a\x00") == "contains a NUL character"
    assert "U+DFFF" in text_problem("\udfff")
