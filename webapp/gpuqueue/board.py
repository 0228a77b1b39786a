"""The queue as people see it: positions, waiting times and why a run is still waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.experiments.dependencies import label, waiting_on
from webapp.experiments.models import Experiment
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker
from workers.queue import HELD, QUEUE_ORDER, teams_at_limit

S = Experiment.Status


@dataclass
class Row:
    experiment: Experiment
    position: int | None  # 1-based place in its pool's queue; None once claimed
    waiting: timedelta
    note: str


def queue_rows(experiments=None) -> list[Row]:
    """Every active experiment (or those of `experiments`) with its place and what it waits for."""
    now = timezone.now()
    queued = list(Experiment.objects.filter(status=S.QUEUED).order_by("pool", *QUEUE_ORDER)
                  .values_list("pk", "pool"))
    places: dict[int, int] = {}
    counters: dict[str, int] = {}
    for pk, pool in queued:
        counters[pool] = counters.get(pool, 0) + 1
        places[pk] = counters[pool]
    paused_all = QueueSwitch.is_paused()
    paused_pools = set(Pool.objects.filter(paused=True).values_list("name", flat=True))
    full_teams = set(teams_at_limit())
    served = served_pools()
    base = experiments if experiments is not None else Experiment.objects.all()
    rows = []
    for exp in (base.filter(status__in=(S.QUEUED, *HELD)).select_related("team", "owner", "depends_on")
                .order_by("pool", *QUEUE_ORDER)):
        rows.append(Row(exp, places.get(exp.pk), now - exp.created_at,
                        note(exp, paused_all, paused_pools, full_teams, served)))
    rows.sort(key=lambda r: (r.experiment.pool, r.position is not None, r.position or 0))
    return rows


def waiting_note(exp: Experiment) -> str:
    """What one experiment waits for (its own page polls this; the board computes the sets once for all rows)."""
    paused_pools = set(Pool.objects.filter(paused=True, name=exp.pool).values_list("name", flat=True))
    return note(exp, QueueSwitch.is_paused(), paused_pools, set(teams_at_limit()), served_pools())


def note(exp: Experiment, paused_all: bool, paused_pools: set[str], full_teams: set[int], served: set[str]) -> str:
    if exp.cancel_requested:
        return "cancelling"
    if exp.status == S.CLAIMED:
        return f"starting on {exp.worker_name}"
    if exp.status == S.RUNNING:
        return f"running on {exp.worker_name}"
    if (dependency := waiting_on(exp)) is not None:
        return f"waits for {label(dependency)}"
    if paused_all:
        return "waiting: queue paused"
    if exp.pool in paused_pools:
        return "waiting: pool paused"
    if exp.team_id in full_teams:
        return "waiting: team limit"
    if exp.pool not in served:
        return f"waiting: no worker serves pool {exp.pool}"
    return "waiting for a free worker"


def served_pools() -> set[str]:
    """Pools with at least one online worker that takes new work."""
    cutoff = timezone.now() - timedelta(seconds=settings.LEASE_SECONDS)
    pools: set[str] = set()
    for worker_pools in Worker.objects.filter(mode=Worker.Mode.ACTIVE, stopped_at=None,
                                              heartbeat_at__gte=cutoff).values_list("pools", flat=True):
        pools.update(worker_pools)
    return pools


def worker_rows() -> list[tuple[Worker, str, Experiment | None]]:
    held = {e.worker_name: e for e in Experiment.objects.filter(status__in=HELD).select_related("team")}
    return [(w, w.state(busy=w.name in held), held.get(w.name)) for w in Worker.objects.all()]
