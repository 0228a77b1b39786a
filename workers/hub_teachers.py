"""Teachers by Hugging Face id on the worker: resolved at run start, their commit recorded on the checkpoint."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def localise(experiment: Any, config: Any) -> Any:
    """`config` with its Hub teachers replaced by snapshots in the shared cache (downloaded once).

    Each resolved commit, and what `inspect_checkpoint` finds there, is written to the team's
    checkpoint rows of that id and revision, so the checkpoint page shows the commit and the
    experiment form can check the next run's labels and widths. Raises CheckpointError (an unknown
    id, offline and not cached), which fails the run with its message.
    """
    from django.conf import settings

    from distill_core import hub
    from distill_core.errors import CheckpointError
    from distill_core.teachers import inspect_checkpoint
    from webapp.registry.models import Checkpoint

    config, resolved = hub.localise(config, settings.HF_CACHE)
    for item in resolved.values():
        try:
            info = inspect_checkpoint(item.path)
        except CheckpointError:
            info = None  # not a classifier, say: the run says so when it loads the teacher
        rows = Checkpoint.objects.filter(team_id=experiment.team_id, hub_id=item.ref.repo_id,
                                         hub_revision=item.ref.revision or "")
        rows.update(hub_commit=item.commit, **({"info": info} if info is not None else {}))
        log.info("Teacher %s is commit %s", item.ref.spec(), item.commit)
    return config
