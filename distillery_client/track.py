"""Stream a local distill_core run into a Distillery dashboard (`python -m distill_core run config.json --track`).

TrackingSink is a distill_core event sink. It creates a tracked experiment of the user's team
(POST /api/tracked/), buffers points, phase, progress and the log tail, and sends them in batches
(POST /api/experiments/{id}/ingest/) every `flush_seconds`, at every evaluation and checkpoint.
The server stores points idempotently on (experiment, key, step), so a batch whose answer was lost
is simply sent again. When the server does not answer, training goes on: the buffer keeps growing
up to `max_points` (beyond that the oldest training points are dropped, with a warning; evaluations
are kept) and is sent when the server answers again, retried with a growing pause. At the end
`close()` waits up to `final_wait` seconds for the server, sends the rest and the results
(POST /api/experiments/{id}/finish/). A cancel on the dashboard reaches the run through the
ingest answer (should_cancel). A refusal never stops the training either: a batch answered 400/413
is dropped with an error in the log, a revoked token (401) or a deleted run ends the tracking only.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from distillery_client.http import ApiError, Connection, Unreachable

log = logging.getLogger(__name__)
BATCH = 2000  # points per ingest call (the server takes up to 10,000 and a JSON body of up to 1 MB)
MAX_KEY = 100  # the server's longest metric key
LOG_LINES = 200
PHASE_KEYS = ("name", "label", "done", "total", "unit", "rate", "eta_seconds", "elapsed_seconds", "finished")


class _LogTail(logging.Handler):
    """The run's last lines, like the dashboard's workers keep them (workers/runlog.py)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.changed = False
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record)[:2000])
        self.changed = True

    def text(self) -> str:
        self.changed = False
        return "\n".join(self.lines)


class TrackingSink:
    """Send a run's events to the dashboard; keep training (and buffering) while it does not answer."""

    def __init__(self, connection: Connection, name: str, config: dict[str, Any], *, team: int | str | None = None,
                 inner: Any = None, flush_seconds: float = 2.0, max_points: int = 100_000,
                 max_retry_seconds: float = 30.0, final_wait: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.connection, self.inner = connection, inner
        self.flush_seconds, self.max_points, self.final_wait = flush_seconds, max_points, final_wait
        self.max_retry_seconds, self.clock, self.sleep = max_retry_seconds, clock, sleep
        self.points: dict[tuple[str, int], float] = {}  # insertion order = arrival order
        self.dropped = 0
        self.phase: dict[str, Any] | None = None
        self.environment: dict[str, Any] | None = None
        self.step: int | None = None
        self.total_steps: int | None = None
        self.results: dict[str, Any] | None = None
        self.cancel_requested = False
        self.ended = False  # the server refused more points: the run was ended there
        self.down_since: float | None = None
        self._retry_after = 0.0
        self._pause = 1.0
        self._last_flush = clock()
        self.log_tail = _LogTail()
        body: dict[str, Any] = {"name": name, "config": config}
        if team is not None:
            body["team"] = team
        self.experiment = connection.call("POST", "/api/tracked/", body)  # a wrong URL or token fails the run now
        self.id = self.experiment["id"]
        logging.getLogger("distill_core").addHandler(self.log_tail)
        if logging.getLogger("distill_core").getEffectiveLevel() > logging.INFO:
            logging.getLogger("distill_core").setLevel(logging.INFO)

    @property
    def url(self) -> str:
        return f"{self.connection.url}{self.experiment['url']}"

    # --- the sink protocol ---------------------------------------------------------
    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.inner is not None:
            self.inner.emit(kind, payload)
        if kind == "environment":
            self.environment = payload
        elif kind == "start":
            self.total_steps = int(payload["total_steps"])
        elif kind == "step":
            self.step = int(payload["step"])
            self._add("train", self.step, payload["metrics"])
        elif kind == "eval":
            self._add(payload.get("split", "dev"), int(payload["step"]), payload["metrics"])
            self.flush(force=True)
            return
        elif kind == "phase":
            self.phase = {k: payload.get(k) for k in PHASE_KEYS}
            if self.phase["finished"] or payload.get("done") == 0:
                self.flush(force=True)
                return
        elif kind == "checkpoint":
            self.flush(force=True)
            return
        elif kind == "result":
            self.results = payload
        if self.clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def should_cancel(self) -> bool:
        if self.clock() - self._last_flush >= self.flush_seconds:
            self.flush()
        return self.cancel_requested

    # --- sending -------------------------------------------------------------------
    def _add(self, prefix: str, step: int, metrics: dict[str, Any]) -> None:
        for name, value in metrics.items():
            key = f"{prefix}/{name}"
            if isinstance(value, (int, float)) and math.isfinite(value) and len(key) <= MAX_KEY:
                self.points[(key, step)] = float(value)
        if len(self.points) > self.max_points:
            self._drop_oldest_training_points(len(self.points) - self.max_points)

    def _drop_oldest_training_points(self, n: int) -> None:
        victims = [k for k in self.points if k[0].startswith("train/")][:n] or list(self.points)[:n]
        for key in victims:
            del self.points[key]
        if not self.dropped:
            log.warning("The dashboard has not answered for a while and the buffer is full (%d points): dropping "
                        "the oldest training points", self.max_points)
        self.dropped += len(victims)

    def flush(self, force: bool = False) -> bool:
        """Send what is buffered; False (buffer kept) when the server does not answer. Never raises for that."""
        now = self.clock()
        self._last_flush = now
        if self.ended or (self.down_since is not None and now < self._retry_after):
            return False  # ended on the server, or down: do not hammer it (forced flushes included)
        try:
            self._send()
        except (Unreachable, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status < 500:
                return self._refused(exc)
            if self.down_since is None:
                self.down_since = now
                log.warning("Dashboard unreachable (%s); training goes on and the points are kept", exc)
            self._retry_after = now + self._pause
            self._pause = min(self.max_retry_seconds, self._pause * 2)
            return False
        if self.down_since is not None:
            log.warning("Dashboard back after %.0f s; sent what was buffered", now - self.down_since)
        self.down_since, self._pause = None, 1.0
        return True

    def _refused(self, exc: ApiError) -> bool:
        """The server answered but refused: whatever it was, the training goes on."""
        if exc.status == 409:  # the run ended on the server (cancelled while we were away)
            self.cancel_requested = self.ended = True
            log.warning("The dashboard says: %s Stopping the run.", exc)
        elif exc.status in (400, 413):  # this batch cannot be stored: drop it rather than block the rest
            batch = list(self.points)[:BATCH]
            for key in batch:
                del self.points[key]
            self.dropped += len(batch)
            log.error("The dashboard refused %d points (%s); dropped them", len(batch), exc)
        else:  # token revoked, run deleted: nothing more can be sent; train on without the dashboard
            self.ended = True
            log.error("The dashboard refused the run's points (%s); training goes on without tracking", exc)
        return False

    def _send(self) -> None:
        """Post the buffer in batches; each point leaves the buffer only once the server stored it."""
        first = True
        while first or self.points:
            batch = list(self.points.items())[:BATCH]
            body: dict[str, Any] = {"points": [[k, s, v] for (k, s), v in batch], "phase": self.phase,
                                    "step": self.step, "total_steps": self.total_steps}
            if self.environment is not None:
                body["environment"] = self.environment
            if self.log_tail.changed:
                body["log_tail"] = self.log_tail.text()
            try:
                answer = self.connection.call("POST", f"/api/experiments/{self.id}/ingest/", body)
            except Exception:
                self.log_tail.changed = self.log_tail.changed or "log_tail" in body
                raise
            self.environment = None  # stored
            for key, _ in batch:
                self.points.pop(key, None)
            self.cancel_requested = self.cancel_requested or bool(answer["cancel_requested"])
            first = False

    def close(self, status: str, error: str = "") -> dict[str, Any] | None:
        """Send the rest and end the run on the server; waits up to final_wait seconds for it to answer."""
        logging.getLogger("distill_core").removeHandler(self.log_tail)
        results = self.results
        if results is not None and status == "SUCCEEDED":
            # The export stays on this machine: the dashboard serves only what lies under its own artifact root.
            results = {**results, "export_dir": None, "local_export_dir": results.get("export_dir")}
        deadline = self.clock() + self.final_wait
        while not self.ended:
            self._retry_after = 0.0
            if self.flush(force=True):
                try:
                    body = {"status": status, "error": error[:20000]}
                    if status == "SUCCEEDED":
                        body["results"] = results
                    self.experiment = self.connection.call("POST", f"/api/experiments/{self.id}/finish/", body)
                    if self.dropped:
                        log.warning("%d training points were dropped while the dashboard was unreachable",
                                    self.dropped)
                    return self.experiment
                except Unreachable:
                    pass
                except ApiError as exc:
                    if exc.status < 500:
                        raise
            if self.clock() >= deadline:
                log.warning("The dashboard did not answer for %.0f s: %d points and the results were not sent",
                            self.final_wait, len(self.points))
                return None
            self.sleep(min(self._pause, max(0.0, deadline - self.clock())))
        return None
