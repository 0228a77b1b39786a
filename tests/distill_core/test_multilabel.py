"""Multi-label datasets: several labels per row, sigmoid soft targets, subset accuracy and per-class F1."""

from __future__ import annotations

import json

import pytest

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import DatasetError
from distill_core.evaluate import multilabel_report
from distill_core.export import load_student
from tests.conftest import demo_labels


@pytest.fixture
def multilabel_files(thucnews_slice, tmp_path):
    """The slice with a second label on every third row (its label's neighbour), comma-separated."""
    labels = demo_labels()
    out = {}
    for split, path in thucnews_slice.items():
        rows = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            text, label = line.split("\t")
            names = [labels[int(label)]] + ([labels[(int(label) + 1) % 10]] if i % 3 == 0 else [])
            rows.append(f"{text}\t{','.join(names)}")
        out[split] = tmp_path / f"{split}-ml.tsv"
        out[split].write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def test_the_report_counts_subset_accuracy_and_per_class_f1():
    report = multilabel_report([[1, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 1, 0]], ["a", "b", "c"])
    assert report["accuracy"] == 0.5  # the second row is right on every label
    assert [c["f1"] for c in report["per_class"]] == [1.0, 1.0, 0.0]
    assert report["macro_f1"] == pytest.approx(2 / 3) and report["micro_f1"] == pytest.approx(0.8)
    assert report["label_confusion"][2] == [1, 0, 1, 0] and report["confusion_matrix"] is None


def test_a_multi_label_run_distils_with_sigmoid_targets(make_config, multilabel_files, tmp_path):
    raw = make_config(train={"epochs": 1}, output_dir=str(tmp_path / "ml"))
    raw["data"].update({"train": str(multilabel_files["train"]), "dev": str(multilabel_files["dev"]),
                        "test": str(multilabel_files["test"]), "multi_label": True})
    results = run(ExperimentConfig.from_dict(raw))
    assert results["student"]["confusion_matrix"] is None and len(results["student"]["label_confusion"]) == 10
    assert sum(c["support"] for c in results["student"]["per_class"]) == 60 + 20  # 60 rows, 20 with two labels
    json.dumps(results, allow_nan=False)
    rows = load_student(tmp_path / "ml").predict(["央行宣布降准"])
    assert isinstance(rows[0]["labels"], list) and 0 <= max(rows[0]["probabilities"].values()) <= 1


def test_an_unknown_label_in_a_multi_label_row_names_the_line(make_config, multilabel_files, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("一个标题\tfinance,weather\n", encoding="utf-8")
    raw = make_config()
    raw["data"].update({"train": str(bad), "multi_label": True})
    with pytest.raises(DatasetError, match="bad.tsv line 1: label 'weather'"):
        run(ExperimentConfig.from_dict(raw))
