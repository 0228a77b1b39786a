"""Where a team's files live, and which checkpoint directories a team may register and use.

Every configured checkpoint root holds one folder per team, `<root>/<team-slug>/`. A team may
register a directory only inside its own folders (after resolving symlinks, `..`, `//` and
`/./`), and never one that another team has already registered (rows registered before the
folders existed, or a folder whose slug changed hands). Uploaded checkpoint archives are
unpacked into `<first root>/<team-slug>/uploads/`, uploaded datasets into
`DATASET_ROOT/<team-slug>/`.

A path outside the team's folders gets one message whatever lies there (missing, a file, a
directory, another team's teacher), so the answer cannot be used to probe the server's disk;
messages name the path as the user typed it, never what it resolves to.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from webapp.accounts.models import Team

SAFE_SLUG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")  # a single path component: no "/", ".", ".."
ECHO_CHARS = 200


class PathRefused(Exception):
    """A checkpoint path the team may not register; the message is safe to show to the team."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def folder_name(team: Team) -> str:
    """The team's folder name (its slug), refused unless it is one plain path component."""
    if not SAFE_SLUG.match(team.slug or ""):
        # An assert would be wrong here: slugs set outside the admin are not validated.
        raise PathRefused(f"The team slug {team.slug[:50]!r} cannot name a folder; ask an admin to give "
                          f"{team} a slug of letters, digits, '-' and '_'.")
    return team.slug


def checkpoint_folders(team: Team) -> list[Path]:
    """`<root>/<team-slug>` for every configured checkpoint root, in the configured order."""
    name = folder_name(team)
    return [Path(root).resolve() / name for root in settings.CHECKPOINT_ROOTS]


def upload_dir(team: Team) -> Path:
    """Where the team's uploaded checkpoint archives are unpacked (created on first use)."""
    return checkpoint_folders(team)[0] / "uploads"


def dataset_dir(team: Team) -> Path:
    """Where the team's uploaded dataset files are stored (created on first use)."""
    return Path(settings.DATASET_ROOT) / folder_name(team)


def as_typed(raw: str) -> str:
    """The user's path for a message: quoted, control characters escaped, at most ECHO_CHARS long."""
    text = raw if len(raw) <= ECHO_CHARS else raw[:ECHO_CHARS] + "…"
    return repr(text)


def outside_message(team: Team, raw: str) -> str:
    """The one answer for every path outside the team's folders (no hint about what is there)."""
    folders = ", ".join(f"{folder}/" for folder in checkpoint_folders(team))
    return (f"{as_typed(raw)} is not a directory in {team}'s checkpoint folder ({folders}). Put the checkpoint "
            "there (an admin can copy it in), or upload an archive of it.")


def registered_elsewhere(team: Team, resolved: Path) -> bool:
    """True when another team registered `resolved`, a directory inside it, or one containing it."""
    from webapp.registry.models import Checkpoint

    text = str(resolved)
    overlapping = (Q(path=text) | Q(path__startswith=text.rstrip("/") + "/")
                   | Q(path__in=[str(parent) for parent in resolved.parents]))
    return Checkpoint.objects.exclude(team=team).filter(overlapping).exists()


def is_inside_team_folders(team: Team, resolved: Path) -> bool:
    return any(resolved.is_relative_to(folder) for folder in checkpoint_folders(team))


def resolve_checkpoint_path(team: Team, raw: str) -> Path:
    """The real path of the directory `raw` names, if `team` may register it; PathRefused otherwise."""
    if "\x00" in raw:
        raise PathRefused("The path contains a NUL character.")
    path = Path(raw)  # no expanduser: "~" would name the server account's home
    if not path.is_absolute():
        raise PathRefused("Give an absolute path (starting with /).")
    try:
        resolved = path.resolve()  # symlinks, "..", "//" and "/./" are resolved before any check
    except (OSError, RuntimeError, ValueError):  # symlink loops, names too long
        raise PathRefused(outside_message(team, raw)) from None
    if not is_inside_team_folders(team, resolved) or registered_elsewhere(team, resolved):
        raise PathRefused(outside_message(team, raw))
    if not resolved.is_dir():  # inside the team's own folder: saying so reveals nothing of anyone else's
        raise PathRefused(f"{as_typed(raw)} does not exist or is not a directory.")
    return resolved


def first_registrant(path: Path) -> Team | None:
    """The team that registered the directory `path` first (rows store resolved paths), if any."""
    from webapp.registry.models import Checkpoint

    row = Checkpoint.objects.filter(path=str(path)).select_related("team").order_by("created_at", "pk").first()
    return row.team if row is not None else None


def may_use(team: Team, path: Path) -> bool:
    """True when `team` may load the checkpoint at the resolved `path`.

    A registered directory belongs to the team that registered it first, wherever it lies (rows
    from before per-team folders, e.g. an older demo teacher, stay usable by their team and by
    no other); an unregistered one to the team whose folder holds it.
    """
    owner = first_registrant(path)
    if owner is not None:
        return owner.pk == team.pk
    return is_inside_team_folders(team, path)


def not_yours_message(checkpoint) -> str:
    return (f"The checkpoint {checkpoint.name!r} names a directory that another team registered first, so "
            f"{checkpoint.team} cannot use it; register your own copy (or ask an admin).")


def name_as_typed(message: str, resolved: Path, raw: str) -> str:
    """`message` with the resolved path replaced by what the user typed (it may reveal the server's layout)."""
    typed = raw.rstrip("/") or raw
    return message.replace(str(resolved), typed if len(typed) <= ECHO_CHARS else typed[:ECHO_CHARS] + "…")


def vectors_dir(team) -> Path:
    """A team's word-vector files (vectors.py): a folder of its dataset folder."""
    return dataset_dir(team) / "vectors"


def usable_vectors_path(vectors, team) -> str | None:
    """A WordVectors row's file when `team` owns the row and the file still lies in that team's folder, else None."""
    if vectors.team_id != team.pk:
        return None
    try:
        resolved = Path(vectors.path).resolve()
        folder = vectors_dir(team).resolve()
    except (OSError, RuntimeError, PathRefused):
        return None
    return str(resolved) if resolved.is_relative_to(folder) and resolved.is_file() else None
