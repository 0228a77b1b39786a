"""The experiments list's query: filters and sort order from the query string, scalar columns only.

The page never loads `config` or `results`: the scores it shows and sorts by are pulled out
of the JSON columns by the database (`KT` + `Cast`), so a page of 50 rows reads 50 small rows
whether the team has 10 experiments or 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, FloatField, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import QueryDict

from distill_core.untrusted import text_problem
from webapp.experiments.models import Experiment

MAX_QUERY = 200  # characters of free text
MAX_STUDENT, MAX_TAG = 50, 40  # characters of the student and tag filters

# ?sort= value -> (label, ordering expression when ascending). "-" prefix = descending.
SORTS: dict[str, tuple[str, Any]] = {
    "name": ("Name", F("name")),
    "created": ("Created", F("created_at")),
    "status": ("Status", F("status")),
    "student": ("Student", F("student_type")),
    "best_dev": ("Best dev acc.", F("best_dev_accuracy")),
    "test": ("Test acc.", F("test_accuracy")),
}
DEFAULT_SORT = "-created"

# Metric columns (pulled from the JSON columns in SQL): annotation name -> JSON path.
SCORE_COLUMNS = {
    "best_dev_accuracy": "best__dev/accuracy",
    "best_dev_f1": "best__dev/macro_f1",
    "latest_loss": "latest__train/loss",
    "latest_dev_accuracy": "latest__dev/accuracy",
    "test_accuracy": "results__student__accuracy",
}

LIST_FIELDS = ("id", "name", "status", "student_type", "progress", "phase", "current_step", "total_steps", "cancel_requested", "created_at", "notes",
               "team_id", "owner_id", "owner__username", "teacher_id", "teacher__name", "dataset_id",
               "dataset__name")


@dataclass
class ListQuery:
    """What the user asked for, cleaned: every value is safe to put back into a link."""

    status: str = ""
    teacher: int | None = None
    dataset: int | None = None
    student: str = ""
    tag: str = ""
    owner: int | None = None
    q: str = ""
    sort: str = DEFAULT_SORT
    problems: list[str] = field(default_factory=list)

    def params(self, **override: Any) -> dict[str, str]:
        """The filters (and sort) as query-string parameters, empty ones left out."""
        values = {"status": self.status, "teacher": self.teacher, "dataset": self.dataset, "student": self.student,
                  "tag": self.tag, "owner": self.owner, "q": self.q, "sort": self.sort}
        values.update(override)
        if values.get("sort") == DEFAULT_SORT:
            values.pop("sort")
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    @property
    def is_filtered(self) -> bool:
        return any((self.status, self.teacher, self.dataset, self.student, self.tag, self.owner, self.q))


def _int_param(params: QueryDict, name: str, problems: list[str]) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdecimal() and len(raw) <= 18:
        return int(raw)
    problems.append(f"Ignored the {name} filter: {raw[:40]!r} is not an id.")
    return None


def _text_param(params: QueryDict, name: str, what: str, limit: int, problems: list[str]) -> str:
    """A free-text filter, or "" with a note when no database could compare it (NUL) or it is too long."""
    raw = params.get(name, "").strip()
    problem = text_problem(raw)
    if problem is None and len(raw) > limit:
        problem = f"is longer than {limit} characters"
    if problem:
        problems.append(f"Ignored {what}: it {problem}.")
        return ""
    return raw


def parse(params: QueryDict) -> ListQuery:
    """Read filters and sort from the query string; anything malformed is dropped with a note.

    The view answers 400 when there is a note: the page is still shown, without those filters.
    """
    problems: list[str] = []
    status = params.get("status", "").strip().upper()
    if status and status not in Experiment.Status.values:  # also keeps NUL away from the query
        problems.append(f"Ignored the status filter: {status[:40]!r} is not a status.")
        status = ""
    sort = params.get("sort", DEFAULT_SORT).strip()
    if sort.lstrip("-") not in SORTS:
        if sort:
            problems.append(f"Ignored the sort order {sort[:40]!r}.")
        sort = DEFAULT_SORT
    return ListQuery(
        status=status,
        teacher=_int_param(params, "teacher", problems),
        dataset=_int_param(params, "dataset", problems),
        student=_text_param(params, "student", "the student filter", MAX_STUDENT, problems),
        tag=_text_param(params, "tag", "the tag filter", MAX_TAG, problems),
        owner=_int_param(params, "owner", problems),
        q=_text_param(params, "q", "the search", MAX_QUERY, problems),
        sort=sort,
        problems=problems,
    )


def with_scores(experiments: QuerySet[Experiment]) -> QuerySet[Experiment]:
    """Annotate the scalar scores the list and compare pages show (floats, None when absent)."""
    return experiments.annotate(**{name: Cast(KT(path), FloatField()) for name, path in SCORE_COLUMNS.items()})


def apply(experiments: QuerySet[Experiment], query: ListQuery) -> QuerySet:
    """The ids of `experiments` (already limited to the user's teams) that match, in display order.

    Only ids: paginate this, then fetch the page's rows with `rows()`. The JSON scores are
    extracted for every matching row only when the user sorts by one of them.
    """
    filters = Q()
    if query.status:
        filters &= Q(status=query.status)
    if query.teacher is not None:
        filters &= Q(teacher_id=query.teacher)
    if query.dataset is not None:
        filters &= Q(dataset_id=query.dataset)
    if query.student:
        filters &= Q(student_type=query.student)
    if query.owner is not None:
        filters &= Q(owner_id=query.owner)
    if query.tag:
        # A subquery rather than a join: no duplicate rows, no DISTINCT over the page.
        filters &= Q(pk__in=Experiment.tags.through.objects.filter(tag__name=query.tag).values("experiment_id"))
    if query.q:
        filters &= Q(name__icontains=query.q) | Q(notes__icontains=query.q)

    name = query.sort.lstrip("-")
    expression = SORTS[name][1]
    matching = experiments.filter(filters)
    if expression.name in SCORE_COLUMNS:
        matching = matching.annotate(**{expression.name: Cast(KT(SCORE_COLUMNS[expression.name]), FloatField())})
    order = expression.desc(nulls_last=True) if query.sort.startswith("-") else expression.asc(nulls_last=True)
    return matching.order_by(order, "-pk").values_list("pk", flat=True)


def rows(ids: list[int]) -> list[Experiment]:
    """The list's rows for `ids`, in that order: scalar columns, scores, owner/teacher/dataset names, tags."""
    found = {e.pk: e for e in with_scores(Experiment.objects.filter(pk__in=ids))
             .select_related("owner", "teacher", "dataset")
             .only(*LIST_FIELDS)
             .prefetch_related("tags")}
    from webapp.experiments.trials import TuneTrial

    trials = dict(TuneTrial.objects.filter(experiment_id__in=ids).values_list("experiment_id")
                  .annotate(n=Count("id")).values_list("experiment_id", "n"))
    for pk, experiment in found.items():
        experiment.trial_count = trials.get(pk, 0)  # tune-KD child runs, shown beside the student
    return [found[pk] for pk in ids if pk in found]
