"""The experiments list (home): filters, sort, pages; inline tags and notes through a JSON POST."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from distill_core.untrusted import UntrustedInput, loads
from webapp.accounts.access import get_owned, owned
from webapp.accounts.models import teams_of
from webapp.experiments import listing
from webapp.experiments.annotations import AnnotationError, annotate, clean_notes, clean_tags, tag_names
from webapp.experiments.compare import MAX_COMPARE
from webapp.experiments.experiment_form import STUDENT_CHOICES
from webapp.experiments.models import Experiment, Tag
from webapp.experiments.views_json import json_error
from webapp.registry.models import Checkpoint, Dataset

PAGE_SIZE = 50
MAX_BODY = 16 * 1024


def _filter_menus(user) -> dict:
    """Choices for the filter bar: only names and ids, only of the user's teams."""
    teams = teams_of(user)
    return {
        "statuses": Experiment.Status.choices,
        "teachers": owned(user, Checkpoint).order_by("name").values_list("pk", "name"),
        "datasets": owned(user, Dataset).order_by("name").values_list("pk", "name"),
        "students": STUDENT_CHOICES,
        "tags": owned(user, Tag).order_by("name").values_list("name", flat=True).distinct(),
        "owners": (get_user_model().objects.filter(memberships__team__in=teams).distinct()
                   .order_by("username").values_list("pk", "username")),
    }


def _sort_links(query: listing.ListQuery) -> dict[str, dict]:
    """Per sortable column: its link (clicking the current column flips the direction) and state."""
    links = {}
    for name in listing.SORTS:
        current = query.sort.lstrip("-") == name
        descending = query.sort.startswith("-")
        # A first click sorts names ascending and everything else (dates, scores) best/newest first.
        if current:
            target = name if descending else f"-{name}"
        else:
            target = name if name in ("name", "status", "student") else f"-{name}"
        links[name] = {"url": "?" + urlencode(query.params(sort=target)), "active": current,
                       "direction": ("desc" if descending else "asc") if current else ""}
    return links


@login_required
def experiment_list(request):
    query = listing.parse(request.GET)
    paginator = Paginator(listing.apply(owned(request.user, Experiment), query), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = listing.rows(list(page.object_list))
    base = urlencode(query.params())
    has_any = query.is_filtered or bool(page.object_list) or owned(request.user, Experiment).exists()
    return render(request, "experiments/list.html", {
        "page": page,
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "query": query,
        "page_prefix": f"?{base}&page=" if base else "?page=",
        "sorts": _sort_links(query),
        "menus": _filter_menus(request.user),
        "has_any": has_any,
        "max_compare": MAX_COMPARE,
        "has_teams": teams_of(request.user).exists(),
        "nav": "experiments",
    }, status=400 if query.problems else 200)


@login_required
@require_POST
def experiment_annotate(request, pk: int):
    """POST {"tags": [...]} and/or {"notes": "..."} -> {"tags": [...], "notes": "..."}."""
    experiment = get_owned(request.user, Experiment.objects.only("pk", "team_id", "notes"), pk=pk)
    if len(request.body) > MAX_BODY:
        return json_error(f"The request is too large (at most {MAX_BODY // 1024} KB).", status=413)
    try:
        body = loads(request.body or b"{}")
    except UntrustedInput as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=400)
    if not isinstance(body, dict) or not ({"tags", "notes"} & body.keys()):
        return json_error("Send a JSON object with \"tags\" and/or \"notes\".")
    try:
        tags = clean_tags(body["tags"]) if "tags" in body else None
        notes = clean_notes(body["notes"]) if "notes" in body else None
    except AnnotationError as exc:
        return JsonResponse({"error": exc.message, "field": exc.field}, status=400)
    annotate(experiment, tags=tags, notes=notes)
    return JsonResponse({"tags": tag_names(experiment), "notes": experiment.notes if notes is None else notes})
