"""The query parameters of the API's lists: paging, and the experiments list's filters and sort order.

The filters and sort orders the experiments page offers (status, teacher, dataset, student, tag,
search, sort) are the page's own (webapp/experiments/listing.py applies them for both); the API
adds the ones the CLI's `distillery ls` sends (team, name, owner by username, tracked).
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.db.models import QuerySet
from ninja import Schema
from pydantic import AfterValidator, Field

from distill_core.untrusted import text_problem
from webapp.api.http import MAX_ID
from webapp.experiments import listing
from webapp.experiments.models import Experiment

MAX_PAGE = 200
MAX_OFFSET = 10**9
STATUSES = tuple(Experiment.Status.values)
SORTS = tuple(name for sort in listing.SORTS for name in (sort, f"-{sort}"))


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem:
        raise ValueError(f"The text {problem}.")
    return text


def text(limit: int):
    """Free text of at most `limit` characters that a database can compare (no NUL, valid Unicode)."""
    return Annotated[str, Field(max_length=limit), AfterValidator(_storable)] | None


ShortText, Student, Tag, Search = text(150), text(listing.MAX_STUDENT), text(listing.MAX_TAG), text(listing.MAX_QUERY)


class Page(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Page size (1–{MAX_PAGE}).")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip.")


class ExperimentFilters(Page):
    status: Literal[STATUSES + tuple(s.lower() for s in STATUSES)] | None = Field(
        None, description="Only this status (any case).")
    sort: Literal[SORTS] = Field(listing.DEFAULT_SORT, description="The list page's sort orders; - for descending.")
    teacher: int | None = Field(None, ge=1, le=MAX_ID, description="Only runs of this checkpoint (its id).")
    dataset: int | None = Field(None, ge=1, le=MAX_ID, description="Only runs on this dataset (its id).")
    student: Student = Field(None, description="Only this student type.")
    tag: Tag = Field(None, description="Only runs with this tag.")
    q: Search = Field(None, description="Only names or notes containing this text (any case).")
    team: ShortText = Field(None, description="Only this team (its id or slug).")
    name: ShortText = Field(None, description="Only names containing this text (any case).")
    owner: ShortText = Field(None, description="Only runs of this user (a username).")
    tracked: Literal["true", "false"] | None = Field(
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
