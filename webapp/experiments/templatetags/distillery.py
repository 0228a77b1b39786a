"""Template filters that render missing or malformed values as "—" instead of failing."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from django import template

register = template.Library()

DASH = "—"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@register.filter
def get(mapping: Any, key: str) -> Any:
    """mapping[key] for dicts (keys like "dev/accuracy" need this), else None."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    """0.8734 -> "87.3%"."""
    number = _number(value)
    return DASH if number is None else f"{number * 100:.{int(digits)}f}%"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    """A float with `digits` decimals; integers stay integers."""
    number = _number(value)
    if number is None:
        return DASH
    if isinstance(value, int):
        return f"{value:,}"
    return f"{number:.{int(digits)}f}"


@register.filter
def sci(value: Any) -> str:
    """A compact number for values like learning rates (1e-3, 0.5)."""
    number = _number(value)
    return DASH if number is None else f"{number:.3g}"


@register.filter
def count(value: Any) -> str:
    """12345678 -> "12.3M", 4200 -> "4,200"."""
    number = _number(value)
    if number is None:
        return DASH
    for threshold, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(number) >= threshold:
            return f"{number / threshold:.1f}{suffix}"
    return f"{int(round(number)):,}"


@register.filter
def megabytes(value: Any) -> str:
    number = _number(value)
    return DASH if number is None else f"{number / 1e6:,.1f} MB"


@register.filter
def ms(value: Any) -> str:
    number = _number(value)
    return DASH if number is None else f"{number:,.2f} ms"


@register.filter
def ratio(value: Any) -> str:
    """4.21 -> "4.2×"."""
    number = _number(value)
    return DASH if number is None else f"{number:,.1f}×"


STUDENT_LABELS = {"textcnn": "TextCNN", "bilstm": "BiLSTM", "bigru": "BiGRU", "transformer": "Transformer"}


@register.filter
def student_label(value: Any) -> str:
    """textcnn -> TextCNN; unknown names are shown as stored."""
    return STUDENT_LABELS.get(value, value) if value else DASH


@register.filter
def dash(value: Any) -> Any:
    """The value itself, or "—" when it is None or empty."""
    return DASH if value is None or value == "" else value


@register.inclusion_tag("includes/status_badge.html")
def status_badge(experiment) -> dict:
    return {"status": experiment.status, "label": experiment.get_status_display(),
            "cancelling": experiment.cancel_requested and experiment.is_active}


@register.inclusion_tag("includes/progress.html")
def progress_bar(experiment, detailed: bool = False) -> dict:
    progress = _number(experiment.progress) or 0.0
    if experiment.status == "SUCCEEDED":
        progress = 1.0
    return {"percent": round(max(0.0, min(1.0, progress)) * 100, 1), "status": experiment.status,
            "current_step": experiment.current_step, "total_steps": experiment.total_steps, "detailed": detailed}


@register.filter
def phase_summary(phase: Any) -> str:
    """A run's phase (distill_core's `phase` event) as "Teacher labelling 1,200 / 12,000 examples"."""
    if not isinstance(phase, dict) or not phase.get("label"):
        return ""
    done, total = _number(phase.get("done")), _number(phase.get("total"))
    if total is None or done is None:
        return str(phase["label"])
    unit = str(phase.get("unit") or "")
    text = f"{phase['label']} {int(done):,} / {int(total):,}"
    return f"{text} {unit}{'' if total == 1 else 's'}" if unit else text


@register.filter
def phase_percent(phase: Any) -> float:
    """0..100 through a countable phase; 0 for one without a total."""
    if not isinstance(phase, dict):
        return 0.0
    done, total = _number(phase.get("done")), _number(phase.get("total"))
    if done is None or not total:
        return 100.0 if phase.get("finished") else 0.0
    return round(max(0.0, min(1.0, done / total)) * 100, 1)


@register.inclusion_tag("includes/field.html")
def field(bound_field) -> dict:
    return {"field": bound_field}


PALETTE_SIZE = 7  # len(COLORS) in static/js/charts.js


@register.filter
def cycle_index(value: Any) -> int:
    """The chart colour slot of the n-th series (swatch-0 … swatch-6 in app.css)."""
    return int(value) % PALETTE_SIZE if isinstance(value, int) else 0
