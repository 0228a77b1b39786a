"""/compare/?ids=3,7,9: curves, config diff, results table and Pareto scatter plots."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.accounts.access import owned
from webapp.experiments import compare as cmp
from webapp.experiments import environment_view
from webapp.experiments.models import Experiment

CHOOSER_ROWS = 200  # the newest runs of the user's teams offered by /compare/ without ids

# Which row of the results table is best: the highest or the lowest value.
BEST = {"student_perplexity": min, "student_accuracy": max, "student_f1": max, "best_dev": max, "parameters": min, "bytes": min,
        "latency_b1": min, "latency_b32": min, "compression": max, "speedup": max}


def _best_marks(rows: list[dict]) -> dict[str, float | None]:
    marks = {}
    for key, pick in BEST.items():
        values = [row[key] for row in rows if row[key] is not None]
        marks[key] = pick(values) if len(values) > 1 else None
    return marks


@login_required
@require_GET
def compare(request):
    raw = request.GET.getlist("ids")
    if not any(part.strip(" ,") for part in raw):  # opened without ids: choose the runs to compare
        return render(request, "experiments/compare_choose.html", {
            "choices": owned(request.user, Experiment).select_related("team", "teacher", "dataset")
            .defer("latest", "config", "results", "log_tail").order_by("-pk")[:CHOOSER_ROWS],
            "max": cmp.MAX_COMPARE, "nav": "experiments"})
    try:
        ids = cmp.parse_ids(raw)
    except cmp.IdsError as exc:
        return render(request, "experiments/compare.html", {"error": str(exc), "nav": "experiments"}, status=400)

    found = {e.pk: e for e in owned(request.user, Experiment).filter(pk__in=ids)
             .select_related("teacher", "dataset", "owner")
             .defer("latest")}
    if len(found) != len(ids):
        # Another team's experiment looks exactly like one that does not exist.
        raise Http404("No experiment matches the given query.")
    experiments = [found[pk] for pk in ids]
    rows = [cmp.results_row(e) for e in experiments]
    # Language models are judged by perplexity when no run of the set has an accuracy.
    quality = ("student_perplexity" if any(r["student_perplexity"] is not None for r in rows)
               and all(r["student_accuracy"] is None for r in rows) else "student_accuracy")
    marks = _best_marks(rows)
    table = [{"experiment": e, "row": row, "best": {k: row[k] is not None and row[k] == marks[k] for k in BEST}}
             for e, row in zip(experiments, rows, strict=True)]
    series = [{"id": e.pk, "name": e.name, "url": reverse("experiments:detail", args=[e.pk]),
               "metrics_url": reverse("experiments:metrics", args=[e.pk])} for e in experiments]
    return render(request, "experiments/compare.html", {
        "experiments": experiments,
        "table": table,
        "diff": cmp.config_diff([e.config for e in experiments]),
        "environment_diff": environment_view.differences(experiments),
        "charts": {
            "series": series,
            "size": cmp.scatter(experiments, rows, "bytes", quality),
            "latency": cmp.scatter(experiments, rows, "latency_b1", quality),
        },
        "quality": "Perplexity" if quality == "student_perplexity" else "Accuracy",
        "has_results": any(row[quality] is not None for row in rows),
        "nav": "experiments",
    })
