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
from webapp.gpuqueue import queue
from webapp.gpuqueue.queue import ClaimLost
from workers import trials
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



LOWER_IS_BETTER = ("loss", "perplexity")  # a key whose last part holds one of these is best when lowest


def better(key: str, value: float, best: float | None) -> bool:
    """Whether `value` beats the `best` so far of series `key` (accuracy: higher; loss, perplexity: lower)."""
    if best is None:
        return True
    lower = any(word in key.rsplit("/", 1)[-1] for word in LOWER_IS_BETTER)
    return value < best if lower else value > best

class DatabaseSink:
    """Event sink for distill_core.distiller.run that writes to an Experiment row.

    Step points are buffered and flushed every `flush_seconds` or `max_buffer` points;
    evaluations and checkpoints flush at once (a checkpoint must not become the resume point
    before the points it covers are stored). MetricPoint is unique on (experiment, key, step)
    and written with ignore_conflicts, so a retried flush neither loses nor duplicates.
    The same timer renews the heartbeat and reads the cancel flag.

    Every write is fenced by the claim `token`: it updates the row only while this claim holds
    the run, and inserts points in the same transaction only when that update changed the row.
    Otherwise it writes nothing and raises ClaimLost, which also refuses the checkpoint or
    export distill_core was about to make, so a worker that was given up on stops on its own.
    """

    def __init__(self, experiment_id: int, flush_seconds: float = 2.0, max_buffer: int = 2000,
                 clock: Callable[[], float] = time.monotonic, *, token: str | None = None):
        self.experiment_id = experiment_id
        self.token = token
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
        self.sampler: Any = None  # a workers.sysmetrics.SystemSampler whose samples each flush stores
        self.results: dict[str, Any] | None = None
        self.phase: dict[str, Any] | None = None
        self._last_flush = clock()
        self._last_phase_write = -math.inf
        self._carried_over = False  # best/latest of earlier attempts merged in (before our first row write)
        self.trials = trials.TrialRecorder(experiment_id, self._fence, with_db_retry)  # tune-KD child runs

    # --- the sink protocol ---------------------------------------------------------
    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "start":
            self.total_steps = int(payload["total_steps"])
            self._start_attempt()
        elif kind == "step":
            self.step = int(payload["step"])
            self._add("train", payload["step"], payload["metrics"])
            if len(self.buffer) >= self.max_buffer or self.clock() - self._last_flush >= self.flush_seconds:
                self.flush()
        elif kind == "eval":
            split = payload.get("split", "dev")
            self._add(split, payload["step"], payload["metrics"])
            for name, value in payload["metrics"].items():
                self._keep_best(f"{split}/{name}", value)
            self.flush()
        elif kind in ("checkpoint", "export"):  # about to write files: store what they cover, check the claim
            self.flush()
        elif kind == "result":
            self.results = payload
        elif kind == "phase":
            self._store_phase(payload)
        elif kind == "environment":  # once, before any other event: the page shows it while the run is young
            environment = queue.json_safe(payload)

            def write() -> None:
                if self._held().update(environment=environment) != 1:
                    raise self._claim_lost()

            with_db_retry(write)
        elif kind in trials.EVENTS:
            self.trials.handle(kind, payload)

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

        def write() -> None:
            if self._held().update(phase=phase) != 1:  # fenced like every write of the run
                raise self._claim_lost()

        with_db_retry(write)
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

    def _take_samples(self) -> None:
        """The system samples taken since the last flush (keyed by second, not step: see workers/sysmetrics.py)."""
        for (key, second), value in self.sampler.drain().items():
            if math.isfinite(value):
                self.buffer[(key, second)] = value
                self.latest[key] = value

    def _keep_best(self, key: str, value: Any) -> None:
        if isinstance(value, (int, float)) and math.isfinite(value) and better(key, value, self.best.get(key)):
            self.best[key] = float(value)

    def _fence(self) -> None:
        """Inside a transaction: lock the row if this claim still holds it, else raise ClaimLost."""
        if self._held().update(heartbeat_at=timezone.now()) != 1:
            raise self._claim_lost()

    def _held(self):
        return queue.held_by(self.experiment_id, self.token)

    def _claim_lost(self) -> ClaimLost:
        return ClaimLost(f"Experiment {self.experiment_id} was given to another worker (this claim, "
                         f"{self.token or 'without a token'}, is no longer held); stopping without writing.")

    def _start_attempt(self) -> None:
        """Record the run's length (fenced) and carry on from what earlier attempts stored."""
        def write() -> None:
            if self._held().update(total_steps=self.total_steps, heartbeat_at=timezone.now()) != 1:
                raise self._claim_lost()

        self._carry_over()
        with_db_retry(write)

    def _carry_over(self) -> None:
        """Merge the best/latest values earlier attempts stored, once, before this sink first writes them.

        A resumed attempt re-evaluates only from its checkpoint on, so the best values of the
        evaluations before it (and the latest of keys it will not log again) come from the row. This
        runs before the first write of any kind: a flush during the phases before training (reading,
        teacher labelling) must not replace the stored best with this attempt's empty one.
        """
        if self._carried_over:
            return
        stored = with_db_retry(lambda: Experiment.objects.values("latest", "best").get(pk=self.experiment_id))
        self.latest = {**(stored["latest"] or {}), **self.latest}
        for key, value in (stored["best"] or {}).items():
            self._keep_best(key, value)
        self._carried_over = True

    def flush(self) -> None:
        """Write buffered points and progress if this claim still holds the run; read the cancel flag.

        Raises ClaimLost, having written nothing, when it does not.
        """
        self._carry_over()
        if self.sampler is not None:
            self._take_samples()
        points = [(k, s, v) for (k, s), v in self.buffer.items()]  # tuples: no model instance per point
        progress = min(1.0, self.step / self.total_steps) if self.total_steps else 0.0
        log_tail = {"log_tail": self.run_log.text()} if self.run_log is not None and self.run_log.changed else {}

        def write() -> bool:
            with transaction.atomic():
                # The row first: this UPDATE is the fence, and its row lock keeps a takeover out until commit.
                if self._held().update(current_step=self.step, progress=progress, latest=self.latest, best=self.best,
                                       heartbeat_at=timezone.now(), **log_tail) != 1:
                    raise self._claim_lost()
                insert_points(self.experiment_id, points)
            return Experiment.objects.filter(pk=self.experiment_id, cancel_requested=True).exists()

        self.cancel_requested = with_db_retry(write)
        self.buffer.clear()
        self._last_flush = self.clock()
