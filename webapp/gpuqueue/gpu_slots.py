"""Which of a worker's GPUs are free, for a claim that books them (webapp/gpuqueue/queue.py claim_next).

A worker that owns several GPUs runs one job per free set of them (celery concurrency = GPUs). Its
children claim concurrently, so a claim first serialises with the worker's other claims
(`lock_worker`), then books GPUs no held run of the worker holds, in the same transaction as the
conditional UPDATE: no run is claimed twice and no GPU is booked twice.
"""

from __future__ import annotations

import hashlib

from django.db import connection


def lock_worker(worker_name: str) -> None:
    """Serialise the claims of one worker's processes until the transaction ends."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.blake2b(worker_name.encode(), digest_size=8).digest(), "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    else:  # SQLite: a write statement takes the database's write lock now, before the reads below
        with connection.cursor() as cursor:
            cursor.execute("UPDATE gpuqueue_worker SET name = name WHERE 0")


def free_gpus(worker_name: str, owned: list[int]) -> list[int]:
    """The worker's GPUs that none of its held runs holds, in the worker's order (call inside the claim)."""
    from webapp.experiments.models import Experiment

    lock_worker(worker_name)
    held = (Experiment.Status.CLAIMED, Experiment.Status.RUNNING)
    busy = {i for ids in Experiment.objects.filter(status__in=held, worker_name=worker_name)
            .values_list("gpu_ids", flat=True) for i in (ids or [])}
    return [i for i in owned if i not in busy]


def most_free(owned: dict[str, list[int]], held: dict[str, list[list[int]]]) -> int | None:
    """The most GPUs free on one worker (worker name -> its GPUs; -> the gpu_ids of its held runs); None: no GPUs."""
    if not any(owned.values()):
        return None
    return max(len(set(gpus) - {i for ids in held.get(name, []) for i in ids}) for name, gpus in owned.items())
