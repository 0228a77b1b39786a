"""Sweeps: one experiment per combination of a few comma-separated value lists, created all or nothing.

The experiments of a sweep share a tag (`sweep-<id of its first experiment>`), so the list's tag
filter shows exactly that sweep without a new column or migration.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from django.db import transaction

from webapp.experiments.configs import create_experiment
from webapp.experiments.models import Experiment, Tag

MAX_COMBINATIONS = 64
MAX_VALUES = 16

# form field -> (the single-value field it overrides, its short label in names)
SWEEP_FIELDS = {
    "sweep_temperature": ("temperature", "T"),
    "sweep_alpha": ("alpha", "α"),
    "sweep_learning_rate": ("learning_rate", "lr"),
    "sweep_student_type": ("student_type", "student"),
}


class SweepError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def split_values(text: str) -> list[str]:
    items = [item.strip() for item in (text or "").split(",")]
    items = [item for item in items if item]
    if len(items) > MAX_VALUES:
        raise SweepError(f"At most {MAX_VALUES} values per list (got {len(items)}).")
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        raise SweepError(f"{duplicates[0]!r} appears twice.")
    return items


def parse_numbers(text: str, low: float, high: float, *, low_open: bool, what: str) -> list[float]:
    """'2, 4, 8' -> [2.0, 4.0, 8.0]; each value finite and in range (low exclusive when low_open)."""
    values = []
    for item in split_values(text):
        try:
            value = float(item)
        except ValueError:
            raise SweepError(f"{item[:40]!r} is not a number.") from None
        if not math.isfinite(value):
            raise SweepError(f"{item[:40]!r} is not a finite number.")
        if value < low or (low_open and value == low) or value > high:
            bound = "greater than" if low_open else "at least"
            raise SweepError(f"{what} {item} is out of range: it must be {bound} {low:g} and at most {high:g}.")
        values.append(value)
    return values


def combinations(lists: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the non-empty lists as {single-value field: value}; [{}] when none is given."""
    given = [(SWEEP_FIELDS[name][0], values) for name, values in lists.items() if values]
    if not given:
        return [{}]
    count = math.prod(len(values) for _, values in given)
    if count > MAX_COMBINATIONS:
        sizes = " × ".join(str(len(values)) for _, values in given)
        raise SweepError(f"{sizes} = {count} experiments; a sweep may create at most {MAX_COMBINATIONS}.")
    fields = [field for field, _ in given]
    return [dict(zip(fields, combo, strict=True)) for combo in itertools.product(*(values for _, values in given))]


LABELS = {field: label for field, label in SWEEP_FIELDS.values()}


def describe(overrides: dict[str, Any]) -> str:
    """{'temperature': 4.0, 'alpha': 0.5} -> 'T=4, α=0.5'."""
    return ", ".join(f"{LABELS[k]}={v:g}" if isinstance(v, float) else f"{LABELS[k]}={v}" for k, v in overrides.items())


def combination_name(name: str, overrides: dict[str, Any], limit: int = 200) -> str:
    if not overrides:
        return name[:limit]
    suffix = f" [{describe(overrides)}]"
    return name[: max(0, limit - len(suffix))] + suffix


def create_sweep(*, team, owner, checkpoint, dataset, fields: dict[str, Any], configs: list[dict[str, Any]],
                 **create_kwargs: Any) -> tuple[list[Experiment], Tag]:
    """Create every config's experiment and tag them with one new sweep tag, in one transaction.

    `create_kwargs` (pool, priority, ...) go to every create_experiment call.
    """
    with transaction.atomic():
        experiments = [create_experiment(team=team, owner=owner, checkpoint=checkpoint, dataset=dataset,
                                         fields=fields, config=config, **create_kwargs) for config in configs]
        number = experiments[0].pk
        while Tag.objects.filter(team=team, name=f"sweep-{number}").exists():  # a person may have used the name
            number += 1
        tag = Tag.objects.create(team=team, name=f"sweep-{number}")
        tag.experiments.add(*experiments)
    return experiments, tag


def queue_from_form(form, owner) -> tuple[list[Experiment], Tag | None]:
    """Queue what a valid ExperimentForm describes: one experiment, or a tagged sweep of them.

    The web page and the REST API both call this, so a sweep posted to either queues every combination.
    """
    cd = form.cleaned_data
    runtime = round(cd["max_runtime_hours"] * 3600) if cd.get("max_runtime_hours") else None
    common = {"team": cd["team"], "owner": owner, "checkpoint": cd["teacher"], "dataset": cd["dataset"], "fields": cd,
              "max_runtime_seconds": runtime}
    if len(form.configs) > 1:
        return create_sweep(configs=form.configs, **common)
    return [create_experiment(config=form.config, **common)], None

