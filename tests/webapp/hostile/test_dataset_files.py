"""Hostile dataset files (TSV, CSV, JSONL) are refused on the field to fix; no row and no file stays."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import TRAIN_ROWS, tsv
from tests.webapp.hostile.checks import assert_form_refused, assert_json_refused

GOOD_TSV = tsv(TRAIN_ROWS)
GOOD_JSONL = "".join(f'{{"text": "{text}", "label": "{label}"}}\n' for text, label in TRAIN_ROWS)
BIG_FIELD = "x" * (20 * 2**20)  # 20 MB on one line: past csv's 128 KB field limit


def jsonl_with(line: str) -> str:
    return GOOD_JSONL + line + "\n"


# (form fields besides the train file, train file contents, field to blame, text of the message)
CASES = {
    "a NUL in a TSV label": ({}, GOOD_TSV + "a title\tfin\x00ance\n", "train_file", "line 19: the file contains a NUL"),
    "a NUL in a TSV text": ({}, "a ti\x00tle\tfinance\n" + GOOD_TSV, "train_file", "line 1: the file contains a NUL"),
    "a NUL in a CSV field": ({"format": "csv"}, GOOD_TSV.replace("\t", ",") + "x\x00,tech\n", "train_file",
                             "contains a NUL"),
    "a NUL escape in a JSONL label": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                      jsonl_with('{"text": "t", "label": "fin\\u0000ance"}'), "train_file",
                                      "line 19: label contains a NUL character"),
    "a NUL escape in a JSONL text": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                     jsonl_with('{"text": "a\\u0000b", "label": "tech"}'), "train_file",
                                     "line 19: text contains a NUL character"),
    "an unpaired surrogate in a JSONL text": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                              jsonl_with('{"text": "a\\ud800b", "label": "tech"}'), "train_file",
                                              "line 19: text contains an unpaired surrogate (U+D800)"),
    "a 5,000-digit JSONL label": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                  jsonl_with('{"text": "t", "label": ' + "9" * 5000 + "}"), "train_file",
                                  "line 19: The JSON holds a number with more than 4,300 digits"),
    "a JSONL label nested 100,000 deep": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                          jsonl_with('{"text": "t", "label": ' + "[" * 100_000 + "]" * 100_000 + "}"),
                                          "train_file", "line 19: The JSON is nested too deeply"),
    "a JSONL label nested 100 deep": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                      jsonl_with('{"text": "t", "label": ' + "[" * 100 + "]" * 100 + "}"),
                                      "train_file", "line 19: The JSON is nested deeper than 64 levels"),
    "a JSONL line that is not JSON": ({"format": "jsonl", "text_column": "text", "label_column": "label"},
                                      jsonl_with("{nope"), "train_file", "line 19: Not valid JSON"),
    "a 20 MB one-line TSV": ({}, BIG_FIELD + "\tfinance\n", "train_file",
                             "line 1: a field is longer than 131,072 characters"),
    "a 20 MB field on line 3 of a TSV": ({}, "a\tfinance\nb\tsports\n" + BIG_FIELD + "\ttech\n", "train_file",
                                         "line 3: a field is longer than 131,072 characters"),
    "a 20 MB TSV field with dev_ratio": ({"dev_ratio": "0.3"}, GOOD_TSV + BIG_FIELD + "\ttech\n", "train_file",
                                         "a field is longer than 131,072 characters"),
    "a 20 MB CSV field with dev_ratio": ({"format": "csv", "dev_ratio": "0.3"},
                                         GOOD_TSV.replace("\t", ",") + BIG_FIELD + ",tech\n", "train_file",
                                         "line 19: a field is longer than 131,072 characters"),
    "a superscript text column": ({"text_column": "²"}, GOOD_TSV, "text_column", "is a column name"),
    "a superscript label column": ({"label_column": "¹"}, GOOD_TSV, "label_column", "is a column name"),
    "an Arabic-Indic label column": ({"label_column": "١"}, GOOD_TSV, "label_column", "is a column name"),
    "a column index past any row": ({"text_column": "99999999999999999999999"}, GOOD_TSV, "text_column",
                                    "but the row has only 2 column(s)"),
    "a NUL in a column name": ({"text_column": "te\x00xt"}, GOOD_TSV, "text_column", "Null characters"),
    "a NUL in the label names": ({"label_names": "finance\nspo\x00rts\ntech"}, GOOD_TSV, "label_names",
                                 "Null characters"),
    "a binary file": ({}, b"\x00\xff\xfe binary", "train_file", "not UTF-8"),
    "an unknown format": ({"format": "exe"}, GOOD_TSV, "format", "not one of the available choices"),
    "a 500-character name": ({"name": "x" * 500}, GOOD_TSV, "name", "at most 100 characters"),
    "an out-of-range team": ({"team": str(10**30)}, GOOD_TSV, "team", "valid choice"),
    "an HTML name and no file": ({"name": "<b>x</b>", "train_file": None}, GOOD_TSV, "train_file", "required"),
}


def upload(content: str | bytes, name: str = "train.tsv") -> SimpleUploadedFile:
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/plain")


def fields_for(acme, extra: dict, content: str | bytes) -> dict:
    data = {"team": acme.pk, "name": "hostile", "format": "tsv", "text_column": "0", "label_column": "1",
            "train_file": upload(content)}
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("extra, content, field, text", CASES.values(), ids=CASES.keys())
def test_the_api_refuses_a_hostile_dataset_on_its_field(api, acme, unchanged, extra, content, field, text):
    with unchanged():
        response = api.post("/api/datasets/", fields_for(acme, extra, content))
    assert_json_refused(response, 400, text, field=field)


@pytest.mark.parametrize("name", ["a NUL in a TSV label", "a 20 MB CSV field with dev_ratio",
                                  "a superscript label column", "a 5,000-digit JSONL label"])
def test_the_upload_page_refuses_a_hostile_dataset_on_its_field(alice_client, acme, unchanged, name):
    extra, content, field, text = CASES[name]
    with unchanged():
        response = alice_client.post("/datasets/new/", fields_for(acme, extra, content))
    assert_form_refused(response, field, text)
