"""Turn distill_core events into database rows, in batches, surviving dropped connections."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from webapp.experiments.models import Experiment
from workers.bulk import insert_points

log = logging.getLogger(__name__)
T = TypeVar("T")
# What the row keeps of a distill_core `phase` event (distill_core/progress.py).
PHASE_FIELDS = ("name", "label", "done", "total", "unit", "rate", "eta_seconds", "elapsed_seconds", "finished")


def with_db_retry(fn: Callable[[], T], attempts: int = 5, delay: float = 0.5) -> T:
    """Run `fn`, reconnecting and retrying when the database connection drops."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DatabaseError:
            if attempt == attempts:
                raise
            log.warning("Database error (attempt %d/%d); reconnecting", attempt, attempts, exc_info=True)
            if not connection.in_atomic_block:  # inside a caller's transaction, keep its connection
                connection.close()
            time.sleep(delay * attempt)
    raise AssertionError("unreachable")


class DatabaseSink:
    """Event sink for distill_core.distiller.run that writes to an Experiment row.

    Step points are buffered and flushed every `flush_seconds` or `max_buffer` points;
    evaluations flush at once. MetricPoint is unique on (experiment, key, step) and
    written with ignore_conflicts, so a retried flush neither loses nor duplicates.
    The same timer renews the heartbeat and reads the cancel flag.
    """

    def __init__(self, experiment_id: int, flush_seconds: float = 2.0, max_buffer: int = 2000,
                 clock: Callable[[], float] = time.monotonic):
        self.experiment_id = experiment_id
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self.clock = clock
        self.buffer: dict[tuple[str, int], float] = {}
        self.latest: dict[str, float | None] = {}
        self.best: dict[str, float] = {}
        self.total_steps: int | None = None
        self.step = 0
        self.cancel_requested = False
        self.run_log: Any = None  # a workers.runlog.RunLog whose lines each flush stores
        self.results: dict[str, Any] | None = None
        self.phase: dict[str, Any] | None = None
        self._last_flush = clock()
        self._last_phase_write = -math.inf

    # --- the sink protocol ---------------------------------------------------------
    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "start":
            self.total_steps = int(payload["total_steps"])
            with_db_retry(lambda: Experiment.objects.filter(pk=self.experiment_id).update(
                total_steps=self.total_steps, heartbeat_at=timezone.now()))
        elif kind == "step":
            self.step = int(payload["step"])
            self._add("train", payload["step"], payload["metrics"])
            if len(self.buffer) >= self.max_buffer or self.clock() - self._last_flush >= self.flush_seconds:
                self.flush()
        elif kind == "eval":
            split = payload.get("split", "dev")
            self._add(split, payload["step"], payload["metrics"])
            for name, value in payload["metrics"].items():
                key = f"{split}/{name}"
                if math.isfinite(value) and (key not in self.best or value > self.best[key]):
                    self.best[key] = value
            self.flush()
        elif kind == "result":
            self.results = payload
        elif kind == "phase":
            self._store_phase(payload)

    def should_cancel(self) -> bool:
        """Polled by the training loop; flushes on the way so heartbeats keep coming."""
        if self.clock() - self._last_flush >= self.flush_seconds:
            self.flush()
        return self.cancel_requested

    # --- writing -------------------------------------------------------------------
    def _store_phase(self, payload: dict[str, Any]) -> None:
        """Keep the current phase on the row: at once when one starts or ends, else every `flush_seconds`.

        distill_core already throttles these events (about one a second per phase); this write is separate
        from `flush` so a long teacher pass, which makes no steps, still moves the page.
        """
        previous = self.phase
        self.phase = {k: payload.get(k) for k in PHASE_FIELDS}
        boundary = previous is None or previous["name"] != self.phase["name"] or self.phase["finished"]
        if not boundary and self.clock() - self._last_phase_write < self.flush_seconds:
            return
        phase = self.phase
        with_db_retry(lambda: Experiment.objects.filter(pk=self.experiment_id).update(phase=phase))
        self._last_phase_write = self.clock()

    def _add(self, prefix: str, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            key = f"{prefix}/{name}"
            value = float(value)
            if not math.isfinite(value):  # JSON columns refuse NaN; the chart shows a gap
                self.latest[key] = None
                continue
            self.buffer[(key, int(step))] = value
            self.latest[key] = value

    def flush(self) -> None:
        """Write buffered points and progress; read the cancel flag."""
        points = [(k, s, v) for (k, s), v in self.buffer.items()]  # tuples: no model instance per point
        progress = min(1.0, self.step / self.total_steps) if self.total_steps else 0.0
        log_tail = {"log_tail": self.run_log.text()} if self.run_log is not None and self.run_log.changed else {}

        def write() -> bool:
            with transaction.atomic():
                insert_points(self.experiment_id, points)
                Experiment.objects.filter(pk=self.experiment_id).update(
                    current_step=self.step, progress=progress, latest=self.latest, best=self.best,
                    heartbeat_at=timezone.now(), **log_tail)
            return Experiment.objects.filter(pk=self.experiment_id, cancel_requested=True).exists()

        self.cancel_requested = with_db_retry(write)
        self.buffer.clear()
        self._last_flush = self.clock()
