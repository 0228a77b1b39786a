"""Language-model datasets: the upload form's LM inputs, registering an upload, and the run config's LM keys.

An LM dataset is JSONL with prompt/response pairs, chat `messages` or `text` (or a .txt file, one
document per line), read by distill_core.lm. Its column mapping is stored as the `lm` config keys it
sets (`Dataset.lm_columns`), so a run reads the files exactly as the upload check did.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

from django import forms
from django.db import IntegrityError, transaction

from distill_core.errors import DatasetError
from distill_core.lm import rows as lm_rows
from distill_core.lm.options import LM_DATA_FORMATS, LMConfig
from webapp.registry import datasets, ownership
from webapp.registry.models import Dataset

log = logging.getLogger(__name__)

LM_FILE_FORMATS = ("jsonl", "txt")
TXT_CHOICE = ("txt", "Plain text (language model: one document per line)")
COLUMN_KEYS = ("data_format", "prompt_key", "response_key", "messages_key", "text_key")
_D = LMConfig()
# distill_core's field of a DatasetError -> the upload form's input.
_ERROR_FIELDS = {"lm.data_format": "lm_format", "lm.prompt_key": "prompt_key", "lm.response_key": "response_key",
                 "lm.messages_key": "messages_key", "lm.text_key": "text_key"}


def _key(initial: str, help_text: str, label: str) -> forms.CharField:
    return forms.CharField(max_length=100, required=False, initial=initial, help_text=help_text, label=label)


class LMDatasetFields(forms.Form):
    """The upload form's kind switch and LM column mapping (ignored for classification uploads)."""

    kind = forms.ChoiceField(choices=Dataset.Kind.choices, initial=Dataset.Kind.CLASSIFICATION, required=False,
                             help_text="Language model: JSONL prompt/response pairs, chat messages or text, or a "
                                       ".txt file; for lm_distill runs.")
    lm_format = forms.ChoiceField(choices=[(f, f.replace("_", "/")) for f in LM_DATA_FORMATS], initial=_D.data_format,
                                  required=False, label="Rows are",
                                  help_text="auto: each row by its keys (messages, then response, then text).")
    prompt_key = _key(_D.prompt_key, "JSONL key of the prompt.", "Prompt key")
    response_key = _key(_D.response_key, "JSONL key of the response the student learns.", "Response key")
    messages_key = _key(_D.messages_key, "JSONL key of a chat's [{role, content}, …] list.", "Messages key")
    text_key = _key(_D.text_key, "JSONL key of a plain-text document.", "Text key")

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or Dataset.Kind.CLASSIFICATION
        cleaned["kind"] = kind
        file_format = cleaned.get("format")
        if kind == Dataset.Kind.LM:
            if file_format and file_format not in LM_FILE_FORMATS:
                self.add_error("format", "A language-model dataset is JSONL or plain text (.txt).")
            if cleaned.get("label_names"):
                self.add_error("label_names", "A language-model dataset has no labels; leave this empty.")
            for name in COLUMN_KEYS[1:]:
                value = (cleaned.get(name) or "").strip() or getattr(_D, name)
                if any(ch in value for ch in "\x00\r\n"):
                    self.add_error(name, "A key is one line of visible text.")
                cleaned[name] = value
            cleaned["lm_format"] = cleaned.get("lm_format") or _D.data_format
        else:
            if file_format == "txt":
                self.add_error("format", "Plain text has no labels; choose Language model as the kind, or a "
                                         "TSV/CSV/JSONL file with a label column.")
            for name in ("text_column", "label_column"):  # optional only for LM uploads
                if name in self.fields and not (cleaned.get(name) or "").strip() and name not in self.errors:
                    self.add_error(name, "This field is required.")
        return cleaned


def columns_of(cd: dict[str, Any]) -> dict[str, str]:
    """The `lm` config keys an upload's cleaned data sets."""
    return {"data_format": cd["lm_format"], **{name: cd[name] for name in COLUMN_KEYS[1:]}}


def options_of(dataset: Dataset) -> LMConfig:
    """The LM reading options of `dataset` (distill_core's defaults for what it does not set)."""
    stored = dataset.lm_columns if isinstance(dataset.lm_columns, dict) else {}
    return LMConfig(**{k: v for k, v in stored.items() if k in COLUMN_KEYS and isinstance(v, str)})


def config_sections(dataset: Dataset) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data section, lm reading keys) of a run on the LM `dataset`.

    data.format says "jsonl" for a .txt file too: the LM reader goes by the file's suffix, and
    data.format's choices are the classification readers'.
    """
    data = {"train": dataset.train_path, "dev": dataset.dev_path or None, "test": dataset.test_path or None,
            "format": "jsonl", "labels": []}
    options = options_of(dataset)
    return data, {name: getattr(options, name) for name in COLUMN_KEYS}


def register_any(cd: dict[str, Any], user) -> Dataset:
    """Register a valid DatasetForm's upload of either kind (the page and the API share it)."""
    if cd.get("kind") == Dataset.Kind.LM:
        return register_from_form(cd, user)
    return datasets.register_from_form(cd, user)


def register_from_form(cd: dict[str, Any], user) -> Dataset:
    """Store an LM upload, read every row (line by line), compute its statistics and save the Dataset.

    Raises datasets.UploadRefused naming the form field, after removing whatever was stored.
    """
    team, file_format = cd["team"], cd["format"]
    try:
        directory = ownership.dataset_dir(team) / secrets.token_hex(8)
    except ownership.PathRefused as exc:
        raise datasets.UploadRefused(exc.message, "team") from None
    directory.mkdir(parents=True)
    try:
        files = {"train": cd["train_file"], "dev": cd.get("dev_file"), "test": cd.get("test_file")}
        paths = {split: datasets.store(upload, directory / f"{split}.{file_format}")
                 for split, upload in files.items() if upload is not None}
        ratios = (cd.get("dev_ratio") or 0.0, cd.get("test_ratio") or 0.0)
        if any(ratios):
            paths.update(datasets.split_by_ratio(Path(paths["train"]), file_format, False, *ratios, cd.get("split_seed") or 0))
        dataset = Dataset(team=team, name=cd["name"], created_by=user, kind=Dataset.Kind.LM, format=file_format,
                          has_header=False, train_path=paths["train"], dev_path=paths.get("dev", ""),
                          test_path=paths.get("test", ""), text_column="", label_column="", labels=[],
                          lm_columns=columns_of(cd))
        try:
            dataset.stats = compute_stats(dataset)
        except DatasetError as exc:
            field = _ERROR_FIELDS.get(exc.field or "") or f"{getattr(exc, 'split', 'train')}_file"
            if field.endswith("_file") and files.get(field.removesuffix("_file")) is None:
                field = "train_file"  # a split held out of the train file
            raise datasets.UploadRefused(exc.message, field) from exc
        try:
            with transaction.atomic():
                dataset.save()
        except IntegrityError:
            raise datasets.UploadRefused(f"{team} already has a dataset called {cd['name']!r}.", "name") from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("Registered LM dataset %s (%s) for team %s in %s", dataset.pk, dataset.name, team.pk, directory)
    return dataset


def compute_stats(dataset: Dataset) -> dict[str, Any]:
    """{split: {"rows", "formats": {kind: n}}, "lengths": {"unit": "words", "prompt", "response"} (train histograms)}.

    Reads every line of every split once (upload time, never in a page). Token lengths need a
    tokenizer: the dataset page counts them over the first rows for a chosen checkpoint.
    """
    options = options_of(dataset)
    stats: dict[str, Any] = {}
    prompt_words: list[int] = []
    response_words: list[int] = []
    for name, path in datasets.split_paths(dataset).items():
        formats: dict[str, int] = {}
        count = 0
        try:
            for row in lm_rows.iter_rows(path, options, name):
                count += 1
                kind = "messages" if isinstance(row, dict) else "text" if not row.prompt else "prompt_response"
                formats[kind] = formats.get(kind, 0) + 1
                if name == "train":
                    prompt, response = lm_rows.plain_texts(row)
                    prompt_words.append(len(prompt.split()))
                    response_words.append(len(response.split()))
        except DatasetError as exc:
            exc.split = name
            raise
        stats[name] = {"rows": count, "formats": formats}
    stats["lengths"] = {"unit": "words", "prompt": lm_rows.histogram(prompt_words),
                        "response": lm_rows.histogram(response_words)}
    return stats
