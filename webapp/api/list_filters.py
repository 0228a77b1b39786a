"""The query parameters of the API's lists: paging, and the experiments list's filters and sort order.

The filters and sort orders the experiments page offers (status, teacher, dataset, student, tag,
search, sort) are the page's own (webapp/experiments/listing.py applies them for both); the API
adds the ones the CLI's `distillery ls` sends (team, name, owner by username, tracked).
"""

from __future__ import annotations

from django.db.models import QuerySet
from ninja import Schema
from pydantic import Field

from webapp.api.http import MAX_ID
from webapp.api.params import integer, one_of, text
from webapp.experiments import listing
from webapp.experiments.models import Experiment

MAX_PAGE = 200
MAX_OFFSET = 10**9
STATUSES = tuple(Experiment.Status.values)
SORTS = tuple(name for sort in listing.SORTS for name in (sort, f"-{sort}"))
Id = integer(1, MAX_ID)


class Page(Schema):
    limit: integer(1, MAX_PAGE) = Field(50, description=f"Page size (1–{MAX_PAGE}).")
    offset: integer(0, MAX_OFFSET) = Field(0, description="Rows to skip.")


class ExperimentFilters(Page):
    status: one_of(STATUSES + tuple(s.lower() for s in STATUSES), shown=STATUSES) | None = Field(
        None, description="Only this status (any case).")
    sort: one_of(SORTS) = Field(listing.DEFAULT_SORT, description="The list page's sort orders; - for descending.")
    teacher: Id | None = Field(None, description="Only runs of this checkpoint (its id).")
    dataset: Id | None = Field(None, description="Only runs on this dataset (its id).")
    student: text(listing.MAX_STUDENT) | None = Field(None, description="Only this student type.")
    tag: text(listing.MAX_TAG) | None = Field(None, description="Only runs with this tag.")
    q: text(listing.MAX_QUERY) | None = Field(None, description="Only names or notes containing this text (any case).")
    team: text(100) | None = Field(None, description="Only this team (its id or slug).")
    name: text(100) | None = Field(None, description="Only names containing this text (any case).")
    owner: text(150) | None = Field(None, description="Only runs of this user (a username).")
    tracked: one_of(("true", "false")) | None = Field(
        None, description="true: only tracked runs (streamed from elsewhere); false: only the dashboard's own.")


def ids(qs: QuerySet[Experiment], f: ExperimentFilters) -> QuerySet:
    """The ids of `qs` (the user's teams' experiments) that match `f`, in the asked order (listing.apply)."""
    if f.team:
        qs = qs.filter(team__pk=int(f.team)) if f.team.isascii() and f.team.isdecimal() and len(f.team) < 19 \
            else qs.filter(team__slug=f.team)
    if f.name:
        qs = qs.filter(name__icontains=f.name)
    if f.owner:
        qs = qs.filter(owner__username=f.owner)
    if f.tracked:
        qs = qs.filter(tracked=f.tracked == "true")
    query = listing.ListQuery(status=(f.status or "").upper(), teacher=f.teacher, dataset=f.dataset,
                              student=f.student or "", tag=f.tag or "", q=f.q or "", sort=f.sort)
    return listing.apply(qs, query)
