"""Golden values for the metrics the runs store (computed by hand for these small label lists)."""

from __future__ import annotations

import numpy as np
import pytest

from distill_core.evaluate import classification_report, multilabel_report, report_for


def test_single_label_report_matches_hand_computed_values():
    # true: a a b b c ; pred: a b b b a   (class d never occurs)
    report = classification_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c", "d"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    a, b, c, d = report["per_class"]
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((2 / 3, 1.0, 0.8, 2))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)
    assert d == {"label": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # macro-F1 over the classes that occur (a, b, c), not over d
    assert report["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_an_empty_split_reports_zeros_instead_of_failing():
    report = classification_report([], [], ["a", "b"])
    assert report["accuracy"] == 0.0 and report["macro_f1"] == 0.0
    assert report["confusion_matrix"] == [[0, 0], [0, 0]]


def test_multilabel_label_confusion_is_tn_fp_fn_tp_per_class():
    truth = [[1, 0, 1], [0, 1, 0]]
    pred = [[1, 1, 0], [0, 1, 0]]
    report = report_for(truth, pred, ["x", "y", "z"])
    assert report["label_confusion"] == [[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0]]
    assert report["accuracy"] == pytest.approx(0.5)
    assert report["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp 2, fp 1, fn 1
    assert report["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    assert multilabel_report(np.zeros((0, 1)), np.zeros((0, 1)), ["x"])["accuracy"] == 0.0
