"""Pieces the registry's forms and the new-experiment form share: the team field and the checkpoint inspector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from webapp.accounts.models import teams_of


def inspect(path: str | Path) -> dict[str, Any]:
    """distill_core.teachers.inspect_checkpoint without building the model (web requests never do).

    Its `parameters` stay None until a housekeeping task has counted them (archive_jobs).
    Imported on first use: it loads torch.
    """
    from distill_core.teachers import inspect_checkpoint

    return inspect_checkpoint(path, build=False)


class TeamFormMixin:
    """A `team` field limited to the user's teams, preselected when there is only one."""

    def setup_team(self, user) -> None:
        teams = teams_of(user)
        self.fields["team"].queryset = teams
        if len(teams) == 1:
            self.fields["team"].initial = teams[0].pk

    def check_unique_name(self, rows: type | QuerySet, cleaned: dict[str, Any]) -> None:
        """The name must be free among `rows` (a model, or a queryset of the rows that hold names)."""
        team, name = cleaned.get("team"), cleaned.get("name")
        queryset = rows if isinstance(rows, QuerySet) else rows.objects.all()
        if team and name and queryset.filter(team=team, name=name).exists():
            self.add_error("name", f"{team} already has a {queryset.model._meta.verbose_name} called {name!r}.")
