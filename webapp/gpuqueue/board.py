"""The queue as people see it: positions, waiting times and why a run is still waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.experiments.dependencies import label, waiting_on
from webapp.experiments.models import Experiment
from webapp.gpuqueue import gpu_slots
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker
from webapp.gpuqueue.queue import HELD, QUEUE_ORDER, teams_at_limit

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
    free = free_gpus_by_pool()
    base = experiments if experiments is not None else Experiment.objects.all()
    rows = []
    for exp in (base.filter(status__in=(S.QUEUED, *HELD)).select_related("team", "owner", "depends_on")
                .order_by("pool", *QUEUE_ORDER)):
        rows.append(Row(exp, places.get(exp.pk), now - exp.created_at,
                        note(exp, paused_all, paused_pools, full_teams, served, free)))
    rows.sort(key=lambda r: (r.experiment.pool, r.position is not None, r.position or 0))
    return rows


def waiting_note(exp: Experiment) -> str:
    """What one experiment waits for (its own page polls this; the board computes the sets once for all rows)."""
    paused_pools = set(Pool.objects.filter(paused=True, name=exp.pool).values_list("name", flat=True))
    return note(exp, QueueSwitch.is_paused(), paused_pools, set(teams_at_limit()), served_pools(), free_gpus_by_pool())


def note(exp: Experiment, paused_all: bool, paused_pools: set[str], full_teams: set[int], served: set[str],
         free: dict[str, int | None] | None = None) -> str:
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
    most = (free or {}).get(exp.pool)
    if most is not None and most < exp.gpus:
        return f"waiting: needs {exp.gpus} GPU{'s' if exp.gpus > 1 else ''}, {most} free"
    return "waiting for a free worker"


def served_pools() -> set[str]:
    """Pools with at least one online worker that takes new work."""
    cutoff = timezone.now() - timedelta(seconds=settings.LEASE_SECONDS)
    pools: set[str] = set()
    for worker_pools in Worker.objects.filter(mode=Worker.Mode.ACTIVE, stopped_at=None,
                                              heartbeat_at__gte=cutoff).values_list("pools", flat=True):
        pools.update(worker_pools)
    return pools


def free_gpus_by_pool() -> dict[str, int | None]:
    """Pool -> the most GPUs free on one online worker serving it (None: its workers own no GPUs)."""
    cutoff = timezone.now() - timedelta(seconds=settings.LEASE_SECONDS)
    owned: dict[str, dict[str, list[int]]] = {}
    for name, pools, gpus in Worker.objects.filter(mode=Worker.Mode.ACTIVE, stopped_at=None, heartbeat_at__gte=cutoff
                                                   ).values_list("name", "pools", "cuda_indices"):
        for pool in pools:
            owned.setdefault(pool, {})[name] = gpus or []
    held: dict[str, list[list[int]]] = {}
    for name, ids in Experiment.objects.filter(status__in=HELD).values_list("worker_name", "gpu_ids"):
        held.setdefault(name, []).append(ids or [])
    return {pool: gpu_slots.most_free(workers, held) for pool, workers in owned.items()}


def worker_rows() -> list[tuple[Worker, str, list[Experiment]]]:
    """Every worker, its state and the runs it holds (one per GPU set it booked)."""
    held: dict[str, list[Experiment]] = {}
    for e in Experiment.objects.filter(status__in=HELD).select_related("team").order_by("claimed_at"):
        held.setdefault(e.worker_name, []).append(e)
    return [(w, w.state(busy=w.name in held), held.get(w.name, [])) for w in Worker.objects.all()]
