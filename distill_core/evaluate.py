"""Classification metrics: accuracy, macro-F1, a per-class report and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predicted classes."""
    cm = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_report(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """All metrics for one split, as JSON.

    Returns {"accuracy", "macro_f1", "per_class": [{"label", "precision", "recall", "f1", "support"}],
    "confusion_matrix": [[int]]}. Macro-F1 averages over the classes that occur in y_true or y_pred
    (as scikit-learn does by default); a ratio with a zero denominator counts as 0.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    assert y_true.shape == y_pred.shape and y_true.ndim == 1, (y_true.shape, y_pred.shape)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(np.float64)  # (C,)
    support = cm.sum(axis=1)  # (C,) true examples per class
    predicted = cm.sum(axis=0)  # (C,) predictions per class
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": [
            {"label": label, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
             "support": int(support[i])}
            for i, label in enumerate(labels)
        ],
        "confusion_matrix": cm.tolist(),
    }


def multilabel_report(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """Metrics for multi-hot (N, C) truths and predictions.

    accuracy is subset accuracy (every label of a row right); macro_f1 averages per-class F1 over
    classes that occur; micro_f1 pools all decisions. `label_confusion[c]` = [tn, fp, fn, tp];
    there is no C x C confusion matrix for multi-label data (confusion_matrix is None).
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    assert y_true.shape == y_pred.shape and y_true.ndim == 2, (y_true.shape, y_pred.shape)
    tp = (y_true & y_pred).sum(axis=0).astype(np.float64)  # (C,)
    fp = (~y_true & y_pred).sum(axis=0).astype(np.float64)
    fn = (y_true & ~y_pred).sum(axis=0).astype(np.float64)
    tn = (~y_true & ~y_pred).sum(axis=0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = (tp + fp + fn) > 0
    micro = _ratio(np.array([2 * tp.sum()]), np.array([2 * tp.sum() + fp.sum() + fn.sum()]))[0]
    return {
        "accuracy": float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(micro),
        "per_class": [
            {"label": label, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
             "support": int(tp[i] + fn[i])}
            for i, label in enumerate(labels)
        ],
        "confusion_matrix": None,
        "label_confusion": [[int(tn[i]), int(fp[i]), int(fn[i]), int(tp[i])] for i in range(len(labels))],
    }


def report_for(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """classification_report for (N,) class indices, multilabel_report for (N, C) multi-hot arrays."""
    if np.asarray(y_true).ndim == 2:
        return multilabel_report(y_true, y_pred, labels)
    return classification_report(y_true, y_pred, labels)


def accuracy_and_macro_f1(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, float]:
    report = report_for(y_true, y_pred, labels)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
