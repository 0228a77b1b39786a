"""Tags and notes on an experiment: validation and the write, kept apart from the view.

Tags are rows of `Tag` (one name per team) rather than a JSON list on the experiment, so
"every experiment tagged baseline" is an indexed join on every database we run on (SQLite
has no JSON `contains` lookup) and the list can offer the team's tags as a filter menu.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from webapp.experiments.models import Experiment, Tag

MAX_TAGS = 12
MAX_TAG_LENGTH = 40
MAX_NOTES = 2000
# Letters (any script), digits and a few separators; no spaces, quotes or angle brackets.
TAG_PATTERN = re.compile(r"[^\W_][\w.+:=/-]*")


class AnnotationError(ValueError):
    """A message for the user, naming the field ("tags" or "notes") it belongs to."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def clean_tags(raw: Any) -> list[str]:
    """A list of tag names (or one comma-separated string) -> unique, lower-case, valid names."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise AnnotationError("tags", "Tags must be a list of words.")
    tags: list[str] = []
    for tag in (t.strip().lower() for t in raw):
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise AnnotationError("tags", f"A tag has at most {MAX_TAG_LENGTH} characters ({tag[:20]!r}… has "
                                          f"{len(tag)}).")
        if not TAG_PATTERN.fullmatch(tag):
            raise AnnotationError("tags", f"{tag!r} is not a valid tag: use letters, digits and . + : = / - _ "
                                          "(starting with a letter or digit), no spaces.")
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise AnnotationError("tags", f"At most {MAX_TAGS} tags per experiment (got {len(tags)}).")
    return tags


def clean_notes(raw: Any) -> str:
    if not isinstance(raw, str):
        raise AnnotationError("notes", "Notes must be text.")
    notes = raw.replace("\r\n", "\n").strip()
    if "\x00" in notes:
        raise AnnotationError("notes", "Notes cannot contain NUL characters.")
    if len(notes) > MAX_NOTES:
        raise AnnotationError("notes", f"Notes have at most {MAX_NOTES:,} characters (got {len(notes):,}).")
    return notes


def annotate(experiment: Experiment, *, tags: list[str] | None = None, notes: str | None = None) -> None:
    """Replace the experiment's tags and/or notes (already cleaned); unused tags of the team go away."""
    with transaction.atomic():
        if notes is not None:
            experiment.notes = notes
            experiment.save(update_fields=["notes"])
        if tags is not None:
            rows = [Tag.objects.get_or_create(team_id=experiment.team_id, name=name)[0] for name in tags]
            experiment.tags.set(rows)
            Tag.objects.filter(team_id=experiment.team_id, experiments=None).delete()


def tag_names(experiment: Experiment) -> list[str]:
    return sorted(tag.name for tag in experiment.tags.all())
