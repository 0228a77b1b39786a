"""Filters of GET /api/experiments/ beyond `status` (the CLI's `distillery ls` sends them)."""

from __future__ import annotations

from django.db.models import QuerySet

from webapp.api.http import ApiError, int_param

MAX_TEXT = 100
FILTERS = {
    "team": "Only this team (its id or slug).",
    "name": "Only names containing this text (any case).",
    "owner": "Only runs of this user (a username).",
    "tag": "Only runs with this tag.",
    "tracked": "true: only tracked runs (streamed from elsewhere); false: only the dashboard's own.",
}


def _text(request, name: str) -> str:
    value = request.GET.get(name, "")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise ApiError(f"{name} must be at most {MAX_TEXT} characters.", fields={name: ["Too long."]})
    return value


def apply(request, qs: QuerySet) -> QuerySet:
    """`qs` narrowed by the request's filters (each one optional)."""
    if team := _text(request, "team"):
        qs = qs.filter(team__pk=int_param(request, "team", 0, 1, 2**63 - 1)) if team.isdecimal() \
            else qs.filter(team__slug=team)
    if name := _text(request, "name"):
        qs = qs.filter(name__icontains=name)
    if owner := _text(request, "owner"):
        qs = qs.filter(owner__username=owner)
    if tag := _text(request, "tag"):
        qs = qs.filter(tags__name=tag)
    if tracked := _text(request, "tracked"):
        if tracked not in ("true", "false"):
            raise ApiError("tracked must be true or false.", fields={"tracked": ["true or false."]})
        qs = qs.filter(tracked=tracked == "true")
    return qs
