"""List checkpoints registered before per-team folders: outside their team's folder, or shared.

Run once after upgrading: a row another team registered first can no longer be used (new
experiments and "Try it" refuse it), but its past experiments and exports remain; this
command names them so an admin can decide. Exits 1 when a row is unusable, so a deploy
script can stop on it.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from webapp.registry import ownership
from webapp.registry.models import Checkpoint


class Command(BaseCommand):
    help = "List checkpoints outside their team's folder, and those another team registered first."

    def handle(self, *args, **options):
        unusable = 0
        # Hub ids name no directory: each team's row is its own, downloaded into the shared cache.
        rows = Checkpoint.objects.filter(hub_id="").select_related("team").order_by("created_at", "pk")
        for checkpoint in rows:
            path = Path(checkpoint.path).resolve()
            try:
                inside = ownership.is_inside_team_folders(checkpoint.team, path)
            except ownership.PathRefused as exc:  # a slug that cannot name a folder
                self.stdout.write(f"#{checkpoint.pk} {checkpoint.team} / {checkpoint.name}: {exc.message}")
                continue
            if not ownership.may_use(checkpoint.team, path):
                unusable += 1
                first = ownership.first_registrant(path)
                runs = checkpoint.experiments.count()
                self.stdout.write(f"#{checkpoint.pk} {checkpoint.team} / {checkpoint.name}: UNUSABLE, {path} was "
                                  f"registered first by {first}; {runs} experiment(s) used it.")
            elif not inside:
                self.stdout.write(f"#{checkpoint.pk} {checkpoint.team} / {checkpoint.name}: outside the team's "
                                  f"folder ({path}); still usable by {checkpoint.team} only.")
        if unusable:
            raise CommandError(f"{unusable} checkpoint(s) name a directory another team registered first.")
        self.stdout.write("Every checkpoint belongs to its team.")
