"""Team ownership: every view reaches Checkpoint/Dataset/Experiment rows through here.

A row of a team the user is not in is indistinguishable from a row that does not exist
(404), so ids cannot be probed.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.http import Http404

from webapp.accounts.models import teams_of

M = TypeVar("M", bound=models.Model)


def owned(user, model: type[M]) -> models.QuerySet[M]:
    """All rows of `model` that belong to one of `user`'s teams (none for anonymous users)."""
    return model.objects.filter(team__in=teams_of(user))


def get_owned(user, model: type[M] | models.QuerySet[M], **lookup) -> M:
    """The row of `model` matching `lookup` if one of `user`'s teams owns it, else Http404.

    `model` may be a queryset (e.g. with select_related) as well as a model class.
    """
    qs = model if isinstance(model, models.QuerySet) else model.objects.all()
    if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in lookup.values()):
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.")  # beyond any id column
    try:
        return qs.filter(team__in=teams_of(user)).get(**lookup)
    except qs.model.DoesNotExist:
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.") from None
