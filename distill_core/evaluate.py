"""Classification metrics: accuracy, macro-F1, a per-class report and the confusion matrix.

Thin wrappers over `sklearn.metrics` that shape its answers as the JSON the runs store.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_report(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """Return all metrics for one single-label split, as JSON.

    Returns {"accuracy", "macro_f1", "per_class": [{"label", "precision", "recall", "f1", "support"}],
    "confusion_matrix": [[int]]} with rows the true classes and columns the predicted ones. Macro-F1
    averages over the classes that occur in y_true or y_pred (scikit-learn's default); a ratio with a
    zero denominator counts as 0.
    """
    from sklearn import metrics  # heavy import: only runs that evaluate pay for it

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    assert y_true.shape == y_pred.shape and y_true.ndim == 1, (y_true.shape, y_pred.shape)
    every = list(range(len(labels)))
    if len(y_true) == 0:  # sklearn refuses empty inputs; an empty split scores zero
        zeros = np.zeros(len(labels))
        return {"accuracy": 0.0, "macro_f1": 0.0, "per_class": _per_class(labels, zeros, zeros, zeros, zeros),
                "confusion_matrix": np.zeros((len(labels), len(labels)), dtype=int).tolist()}
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=every, zero_division=0)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "per_class": _per_class(labels, precision, recall, f1, support),
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=every).tolist(),
    }


def multilabel_report(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """Return metrics for multi-hot (N, C) truths and predictions, as JSON.

    accuracy is subset accuracy (every label of a row right); macro_f1 averages per-class F1 over
    classes that occur; micro_f1 pools all decisions. `label_confusion[c]` = [tn, fp, fn, tp];
    there is no C x C confusion matrix for multi-label data (confusion_matrix is None).
    """
    from sklearn import metrics

    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    assert y_true.shape == y_pred.shape and y_true.ndim == 2, (y_true.shape, y_pred.shape)
    every = list(range(len(labels)))
    if len(y_true) == 0:
        zeros = np.zeros(len(labels))
        return {"accuracy": 0.0, "macro_f1": 0.0, "micro_f1": 0.0,
                "per_class": _per_class(labels, zeros, zeros, zeros, zeros),
                "confusion_matrix": None, "label_confusion": [[0, 0, 0, 0] for _ in labels]}
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=every, zero_division=0)
    present = [c for c in every if y_true[:, c].any() or y_pred[:, c].any()]
    macro = metrics.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0) if present else 0.0
    confusion = metrics.multilabel_confusion_matrix(y_true, y_pred, labels=every)  # (C, 2, 2): [[tn, fp], [fn, tp]]
    return {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "macro_f1": float(macro),
        "micro_f1": float(metrics.f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "per_class": _per_class(labels, precision, recall, f1, support),
        "confusion_matrix": None,
        "label_confusion": [[int(v) for v in confusion[c].ravel()] for c in every],
    }


def report_for(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, Any]:
    """Return classification_report for (N,) class indices, multilabel_report for (N, C) multi-hot arrays."""
    if np.asarray(y_true).ndim == 2:
        return multilabel_report(y_true, y_pred, labels)
    return classification_report(y_true, y_pred, labels)


def accuracy_and_macro_f1(y_true: Any, y_pred: Any, labels: list[str]) -> dict[str, float]:
    """Return only the two headline figures of `report_for`."""
    report = report_for(y_true, y_pred, labels)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


def _per_class(labels: list[str], precision: Any, recall: Any, f1: Any, support: Any) -> list[dict[str, Any]]:
    return [
        {"label": label, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i, label in enumerate(labels)
    ]
