"""Store uploaded dataset files, read them with distill_core.data, compute their statistics.

Nothing half-created survives a refusal: the upload's directory is removed whenever the
files cannot be read or the row cannot be saved.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import secrets
import shutil
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from distill_core.config import DataConfig
from distill_core.data import Split, read_head, read_split
from distill_core.errors import DatasetError
from webapp.registry import ownership
from webapp.registry.models import Dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
MAX_LABELS = 1000


class UploadRefused(Exception):
    """A dataset upload cannot be registered; `field` names the form field to blame."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def split_paths(dataset: Dataset) -> dict[str, str]:
    """{split: path} for the splits the dataset has, in train/dev/test order."""
    paths = {"train": dataset.train_path, "dev": dataset.dev_path, "test": dataset.test_path}
    return {name: path for name, path in paths.items() if path}


def data_config(dataset: Dataset) -> DataConfig:
    return DataConfig(**dataset.data_config())


def read_splits(dataset: Dataset) -> dict[str, Split]:
    """Every split of `dataset`, read and checked; DatasetError gets a `split` attribute."""
    config = data_config(dataset)
    splits = {}
    for name, path in split_paths(dataset).items():
        try:
            splits[name] = read_split(path, config, list(dataset.labels), name)
        except DatasetError as exc:
            exc.split = name
            raise
    return splits


def compute_stats(dataset: Dataset) -> dict[str, Any]:
    """{split: {"rows": n, "class_counts": [count per label, in label order]}} (raises DatasetError)."""
    stats = {}
    for name, split in read_splits(dataset).items():
        counts = [0] * len(dataset.labels)
        for y in split.labels:
            counts[y] += 1
        stats[name] = {"rows": len(split), "class_counts": counts}
    return stats


def preview_rows(dataset: Dataset, limit: int = 20) -> list[dict[str, Any]]:
    """The first `limit` train examples as {"text", "pair", "label"} (raises DatasetError).

    Reads only the head of the file (read_head): the page costs what it shows, whatever the file's size.
    """
    split = read_head(dataset.train_path, data_config(dataset), list(dataset.labels), "train", rows=limit)
    return [{"text": t, "pair": p, "label": dataset.labels[y]}
            for t, p, y in zip(split.texts, split.pairs or [None] * len(split), split.labels, strict=True)]


def discover_labels(dataset: Dataset) -> list[str]:
    """The sorted distinct label values of the train split (raises DatasetError)."""
    values = sorted(raw_label_values(dataset.train_path, data_config(dataset), "train"))
    if len(values) > MAX_LABELS:
        raise DatasetError(f"The label column has {len(values)} distinct values (at most {MAX_LABELS}); "
                           "is it the right column?", field="data.label_column")
    if len(values) < 2:
        raise DatasetError(f"The train split has only one label value ({', '.join(values)}); a classifier "
                           "needs at least two classes.", field="data.label_column")
    return values


def raw_label_values(path: str, config: DataConfig, name: str) -> set[str]:
    """The distinct label values of one file, as written (raises DatasetError).

    distill_core.data has no public reader that works before the label list is known, so
    this reuses its row readers (same checks, same messages) rather than parsing twice.
    """
    from distill_core import data, readers

    where = Path(path).name
    if config.format in readers.ARROW_FORMATS:  # record batch by record batch, never the whole table
        values = {str(label).strip() for _, (_, _, label) in readers.arrow_rows(Path(path), config, name)}
        if not values:
            raise DatasetError(f"The {name} file {where} has no examples.", field=f"data.{name}")
        return values
    text = data._read_text(Path(path), name)
    rows = data._jsonl_rows(text, where, config) if config.format == "jsonl" else data._delimited_rows(text, where, config)
    if not rows:
        raise DatasetError(f"The {name} file {where} has no examples (only a header or blank lines).",
                           field=f"data.{name}")
    return {str(label).strip() for _, (_, _, label) in rows}


def register_from_form(cd: dict, user) -> Dataset:
    """register_upload with a valid DatasetForm's cleaned data (the page and the API share it)."""
    return register_upload(
        team=cd["team"], user=user, name=cd["name"],
        files={"train": cd["train_file"], "dev": cd.get("dev_file"), "test": cd.get("test_file")},
        format=cd["format"], has_header=cd["has_header"], text_column=cd["text_column"],
        text_pair_column=cd["text_pair_column"], label_column=cd["label_column"], labels=cd["label_names"],
        split_ratios=(cd.get("dev_ratio") or 0.0, cd.get("test_ratio") or 0.0), split_seed=cd.get("split_seed") or 0)


def register_upload(*, team, user, name: str, files: dict[str, UploadedFile | None], format: str,
                    has_header: bool, text_column: str, text_pair_column: str, label_column: str,
                    labels: list[str], split_ratios: tuple[float, float] = (0.0, 0.0),
                    split_seed: int = 0) -> Dataset:
    """Store the files under DATASET_ROOT/<team-slug>/<random>/, read them, save the Dataset.

    `split_ratios` (dev, test) hold out seeded fractions of the train file for splits without a file.
    Raises UploadRefused (naming the form field) after removing whatever was stored.
    """
    try:
        directory = ownership.dataset_dir(team) / secrets.token_hex(8)
    except ownership.PathRefused as exc:
        raise UploadRefused(exc.message, "team") from None
    directory.mkdir(parents=True)
    try:
        paths = {split: store_hf(upload, directory / split, split) if format == "hf"
                 else store(upload, directory / f"{split}.{format}")
                 for split, upload in files.items() if upload is not None}
        if any(split_ratios) and format in ("parquet", "hf"):
            raise UploadRefused(f"Holding out a fraction of train works on TSV, CSV and JSONL files; upload the "
                                f"dev/test splits of a {format.upper()} dataset as their own files.",
                                "dev_ratio" if split_ratios[0] else "test_ratio")
        if any(split_ratios):
            paths.update(split_by_ratio(Path(paths["train"]), format, has_header, *split_ratios, split_seed))
        dataset = Dataset(
            team=team, name=name, created_by=user, format=format, has_header=has_header,
            train_path=paths["train"], dev_path=paths.get("dev", ""), test_path=paths.get("test", ""),
            text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
            labels=labels,
        )
        try:
            if not labels:
                dataset.labels = discover_labels(dataset)
            dataset.stats = compute_stats(dataset)
        except DatasetError as exc:
            field = upload_field(exc, labels_given=bool(labels))
            if field.endswith("_file") and files.get(field.removesuffix("_file")) is None:
                field = "train_file"  # a split held out of the train file
            raise UploadRefused(exc.message, field) from exc
        try:
            with transaction.atomic():
                dataset.save()
        except IntegrityError:
            raise UploadRefused(f"{team} already has a dataset called {name!r}.", "name") from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info("Registered dataset %s (%s) for team %s in %s", dataset.pk, name, team.pk, directory)
    return dataset


def split_by_ratio(train: Path, format: str, has_header: bool, dev_ratio: float, test_ratio: float,
                   seed: int) -> dict[str, str]:
    """Move seeded fractions of the train file's rows into dev/test files beside it; rewrite train.

    Rows keep their file order within each split and a header is repeated in every file. The train
    file is checked first (UTF-8, no NUL, no field past csv's limit) so a refusal names its own lines.
    """
    from distill_core import data

    try:
        text = data._read_text(train, "train")
    except DatasetError as exc:
        raise UploadRefused(exc.message, "train_file") from None
    if format == "csv":
        reader = csv.reader(io.StringIO(text))
        try:
            records = [row for row in reader if any(field.strip() for field in row)]
        except csv.Error as exc:
            raise UploadRefused(f"{train.name} line {reader.line_num}: {data.csv_problem(exc, format)}",
                                "train_file") from None
    else:
        lines = text.splitlines()
        limit = csv.field_size_limit()
        for line_no, line in enumerate(lines, start=1):
            if format == "tsv" and len(line) > limit and any(len(f) > limit for f in line.split("\t")):
                raise UploadRefused(f"{train.name} line {line_no}: {data.field_too_long(format)}", "train_file")
        records = [line for line in lines if line.strip()]
    header = records.pop(0) if has_header and format != "jsonl" and records else None
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_dev, n_test = round(len(records) * dev_ratio), round(len(records) * test_ratio)
    if len(records) - n_dev - n_test < 1 or (dev_ratio and not n_dev) or (test_ratio and not n_test):
        field = "dev_ratio" if dev_ratio else "test_ratio"
        raise UploadRefused(f"The train file has {len(records)} row(s): too few to hold out "
                            f"{dev_ratio:g} for dev and {test_ratio:g} for test and keep some to train on.", field)
    parts = {"dev": order[:n_dev], "test": order[n_dev:n_dev + n_test], "train": order[n_dev + n_test:]}
    paths = {}
    for split, indices in parts.items():
        if not indices:
            continue
        path = train.with_name(f"{split}.{format}")
        rows = ([header] if header is not None else []) + [records[i] for i in sorted(indices)]
        with open(path, "w", encoding="utf-8", newline="") as out:
            if format == "csv":
                csv.writer(out).writerows(rows)
            else:
                out.write("\n".join(rows) + "\n")
        paths[split] = str(path)
    return paths


def store(upload: UploadedFile, path: Path) -> str:
    """Write an upload to `path` (our own file name: the client's name is never used)."""
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return str(path)


def store_hf(upload: UploadedFile, target: Path, split: str) -> str:
    """Unpack a .zip/.tar.gz of a `save_to_disk` directory into `target` (archives.unpack's checks, and at
    most the dataset upload limit unpacked); the directory holding its state.json."""
    from django.conf import settings

    from webapp.registry import archives

    target.mkdir()
    field = f"{split}_file"
    upload.seek(0)
    try:
        archives.unpack(upload.file, target, limit=(settings.MAX_DATASET_UPLOAD_MB * 2**20,
                                                    "DISTILLERY_MAX_DATASET_UPLOAD_MB"))
    except archives.ArchiveRefused as exc:
        raise UploadRefused(exc.message, field) from None
    entries = [p for p in target.iterdir() if p.name != "__MACOSX"]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else target
    if (root / "dataset_dict.json").is_file():
        raise UploadRefused("This archive holds a DatasetDict (several splits); archive one split's directory "
                            "(e.g. the train folder written by save_to_disk) per file.", field)
    if not (root / "state.json").is_file():
        raise UploadRefused("The archive has no state.json at its top level (or in its single top-level "
                            "directory); archive the directory written by Dataset.save_to_disk().", field)
    return str(root)


_COLUMN_FIELDS = {
    "data.text_column": "text_column",
    "data.text_pair_column": "text_pair_column",
    "data.label_column": "label_column",
}


def upload_field(exc: DatasetError, labels_given: bool) -> str:
    """The upload form field a DatasetError is about."""
    if exc.field in _COLUMN_FIELDS:
        return _COLUMN_FIELDS[exc.field]
    if exc.field == "data.labels" and labels_given:
        return "label_names"
    split = getattr(exc, "split", None) or "train"
    return f"{split}_file"
