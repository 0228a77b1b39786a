"""Shape an experiment's `results` JSON (written by the worker) for the page, defensively.

Anything missing or malformed becomes None, which templates render as "—": a result from an
older or newer distill_core must never turn the experiment page into a 500.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

# Size-report keys, with the spellings distill_core.size uses as fallbacks.
_LATENCY_B1 = ("latency_ms_b1", "latency_ms_batch_1")
_LATENCY_B32 = ("latency_ms_b32", "latency_ms_batch_32")
_THROUGHPUT = ("throughput", "throughput_per_s")
_LATENCY_B1_P95 = ("latency_ms_batch_1_p95",)
_LATENCY_B32_P95 = ("latency_ms_batch_32_p95",)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        return None
    return value


def _first(mapping: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if _num(mapping.get(key)) is not None:
            return mapping[key]
    return None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _matrix(value: Any, n: int) -> list[list[float]] | None:
    """An n×n matrix of finite numbers, else None."""
    rows = _list(value)
    if n == 0 or len(rows) != n:
        return None
    if not all(isinstance(r, list) and len(r) == n and all(_num(v) is not None for v in r) for r in rows):
        return None
    return rows


def _model_report(raw: Any, labels: list[str]) -> dict[str, Any]:
    report = _dict(raw)
    per_class = {}
    for row in _list(report.get("per_class")):
        row = _dict(row)
        if "label" in row:
            per_class[str(row["label"])] = {k: _num(row.get(k)) for k in ("precision", "recall", "f1", "support")}
    return {
        "accuracy": _num(report.get("accuracy")),
        "macro_f1": _num(report.get("macro_f1")),
        "per_class": per_class,
        "confusion_matrix": _matrix(report.get("confusion_matrix"), len(labels)),
    }


def summarise(results: Any) -> dict[str, Any] | None:
    """The results section's context, or None when there are no results."""
    if not isinstance(results, dict) or not results:
        return None
    labels = [str(label) for label in _list(results.get("labels"))]
    student = _model_report(results.get("student"), labels)
    teacher = _model_report(results.get("teacher"), labels)
    if not labels:  # fall back on the per-class rows for class names
        labels = list(student["per_class"]) or list(teacher["per_class"])

    per_class = []
    for label in labels:
        s = student["per_class"].get(label, {})
        t = teacher["per_class"].get(label, {})
        per_class.append({"label": label, "student": s, "teacher": t,
                          "support": s.get("support") if s.get("support") is not None else t.get("support")})

    size = _dict(results.get("size"))
    s_size, t_size = _dict(size.get("student")), _dict(size.get("teacher"))
    sizes = {
        "student": {"parameters": _num(s_size.get("parameters")), "bytes": _num(s_size.get("bytes")),
                    "latency_b1": _first(s_size, _LATENCY_B1), "latency_b32": _first(s_size, _LATENCY_B32),
                    "latency_b1_p95": _first(s_size, _LATENCY_B1_P95), "latency_b32_p95": _first(s_size, _LATENCY_B32_P95),
                    "throughput": _first(s_size, _THROUGHPUT), "accuracy": student["accuracy"]},
        "teacher": {"parameters": _num(t_size.get("parameters")), "bytes": _num(t_size.get("bytes")),
                    "latency_b1": _first(t_size, _LATENCY_B1), "latency_b32": _first(t_size, _LATENCY_B32),
                    "latency_b1_p95": _first(t_size, _LATENCY_B1_P95), "latency_b32_p95": _first(t_size, _LATENCY_B32_P95),
                    "throughput": _first(t_size, _THROUGHPUT), "accuracy": teacher["accuracy"]},
    }
    s, t = sizes["student"], sizes["teacher"]
    compression = _num(size.get("compression")) or _ratio(t["parameters"], s["parameters"])
    speedup = _num(size.get("speedup")) or _ratio(t["latency_b32"], s["latency_b32"])
    size_rows = [
        {"name": "Parameters", "kind": "count", "teacher": t["parameters"], "student": s["parameters"],
         "ratio": _ratio(t["parameters"], s["parameters"]), "ratio_word": "smaller"},
        {"name": "Size on disk", "kind": "bytes", "teacher": t["bytes"], "student": s["bytes"],
         "ratio": _ratio(t["bytes"], s["bytes"]), "ratio_word": "smaller"},
        {"name": "Latency, batch 1", "kind": "ms", "teacher": t["latency_b1"], "student": s["latency_b1"],
         "ratio": _ratio(t["latency_b1"], s["latency_b1"]), "ratio_word": "faster"},
        {"name": "Latency, batch 32", "kind": "ms", "teacher": t["latency_b32"], "student": s["latency_b32"],
         "ratio": _ratio(t["latency_b32"], s["latency_b32"]), "ratio_word": "faster"},
        {"name": "Latency p95, batch 1", "kind": "ms", "teacher": t["latency_b1_p95"], "student": s["latency_b1_p95"],
         "ratio": _ratio(t["latency_b1_p95"], s["latency_b1_p95"]), "ratio_word": "faster"},
        {"name": "Latency p95, batch 32", "kind": "ms", "teacher": t["latency_b32_p95"],
         "student": s["latency_b32_p95"], "ratio": _ratio(t["latency_b32_p95"], s["latency_b32_p95"]),
         "ratio_word": "faster"},
        {"name": "Throughput (samples/s)", "kind": "count", "teacher": t["throughput"], "student": s["throughput"],
         "ratio": _ratio(s["throughput"], t["throughput"]), "ratio_word": "more"},
    ]
    accuracy_delta = None
    if s["accuracy"] is not None and t["accuracy"] is not None:
        accuracy_delta = (s["accuracy"] - t["accuracy"]) * 100
    best_dev = _dict(results.get("best_dev"))

    return {
        "labels": labels,
        "test_split": results.get("test_split") if results.get("test_split") in ("test", "dev") else None,
        "student": student,
        "teacher": teacher,
        "per_class": per_class,
        "size_rows": size_rows,
        "compression": compression,
        "speedup": speedup,
        "accuracy_delta": accuracy_delta,
        "retained": _ratio(s["accuracy"], t["accuracy"]),
        "best_dev": {"accuracy": _num(best_dev.get("accuracy")), "macro_f1": _num(best_dev.get("macro_f1")),
                     "epoch": _num(best_dev.get("epoch"))},
        "export_dir": results.get("export_dir") if isinstance(results.get("export_dir"), str) else None,
        # Drawn by static/js/experiment.js from a json_script block.
        "charts": {
            "labels": labels,
            "confusion": {"student": student["confusion_matrix"], "teacher": teacher["confusion_matrix"]},
            "size": {"metrics": [r["name"] for r in size_rows] + ["Accuracy"],
                     "teacher": [r["teacher"] for r in size_rows] + [t["accuracy"]],
                     "student": [r["student"] for r in size_rows] + [s["accuracy"]],
                     "kinds": [r["kind"] for r in size_rows] + ["pct"]},
        },
    }
