"""Keep a running job's lease alive and decide when it must stop (cancel, runtime, shutdown)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)


class StopFlags:
    """Why the training loop should stop; `should_cancel` is what distill_core polls."""

    def __init__(self, sink, max_runtime_seconds: int | None, clock: Callable[[], float] = time.monotonic):
        self.sink = sink
        self.clock = clock
        self.started = clock()
        self.max_runtime_seconds = max_runtime_seconds
        self.cancelled = False  # set by the lease thread from the DB flag
        self.shutdown = False  # SIGTERM: the worker is stopping
        self.lost = False  # another worker took the run over
        # Fault tests slow a tiny run down to GPU-like step times so it can be hit mid-run.
        self.step_delay = float(os.environ.get("DISTILLERY_TEST_STEP_DELAY", "0") or 0)

    @property
    def timed_out(self) -> bool:
        return bool(self.max_runtime_seconds) and self.clock() - self.started >= self.max_runtime_seconds

    def should_cancel(self) -> bool:
        if self.step_delay:
            time.sleep(self.step_delay)
        return self.sink.should_cancel() or self.cancelled or self.shutdown or self.lost or self.timed_out


class LeaseKeeper(threading.Thread):
    """Renew the run's lease every LEASE_SECONDS/4 from a thread, and read the cancel flag.

    The training loop renews it too (through the sink's flush), but teacher pre-computation
    can take longer than a lease without a single step. The thread stops the process
    outright when a run ignores its runtime limit (hung) for a grace period.
    """

    def __init__(self, experiment_id: int, token: str, flags: StopFlags, grace_seconds: float = 300.0):
        super().__init__(name=f"lease-{experiment_id}", daemon=True)
        self.experiment_id = experiment_id
        self.token = token
        self.flags = flags
        self.grace_seconds = grace_seconds
        self.interval = max(0.5, settings.LEASE_SECONDS / 4)
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # a dropped connection is not a lost claim: reconnect and try again
                    log.warning("Could not renew the lease of experiment %s", self.experiment_id, exc_info=True)
                    connection.close()
                    continue
                self._check_hung()
        finally:
            connection.close()

    def beat(self) -> None:
        """Renew the lease once; set `flags.lost` or `flags.cancelled` from what the row says."""
        from webapp.gpuqueue import queue

        cancel = queue.renew_lease(self.experiment_id, self.token)
        if cancel is None:  # the row is no longer this claim's: stop, then say what it holds instead
            self.flags.lost = True
            row = queue.Experiment.objects.filter(pk=self.experiment_id).values("status", "task_id").first()
            log.warning("Experiment %s: claim %s no longer holds the run (now %s); stopping it",
                        self.experiment_id, self.token, row or "no row this connection can see")
        elif cancel:
            self.flags.cancelled = True

    def _check_hung(self) -> None:
        limit = self.flags.max_runtime_seconds
        if limit and self.flags.clock() - self.flags.started > limit + self.grace_seconds:
            from webapp.experiments.models import Experiment
            from webapp.gpuqueue import queue

            log.error("Experiment %s ignored its runtime limit; killing the job process", self.experiment_id)
            queue.finish(self.experiment_id, Experiment.Status.FAILED, token=self.token,
                         error=f"Exceeded its maximum runtime of {limit} s and did not stop; the job was killed.")
            os.kill(os.getpid(), signal.SIGKILL)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def require_autocommit() -> None:
    """Refuse to run a job inside an open transaction: its LeaseKeeper renews through a connection of its own.

    That connection cannot see what the transaction has not committed, the claim included. On Postgres the
    keeper's first renewal (LEASE_SECONDS/4 into the run) then matches no row and stops the run as lost, so
    only runs slower than that fail (the DDP test on a loaded machine); on SQLite the renewal waits on the
    transaction's write lock instead. A Celery job never holds one; a test that calls execute() needs
    pytest-django's transactional_db, not db.
    """
    if connection.in_atomic_block:
        raise RuntimeError("execute() was called inside an open transaction: the lease thread cannot see the "
                           "claim and would stop the run as lost (in a test, use transactional_db, not db).")


class ShutdownSignal:
    """While a job runs, turn SIGTERM into a clean stop (save, re-queue) instead of death."""

    def __init__(self, flags: StopFlags):
        self.flags = flags
        self.previous = None

    def __enter__(self) -> ShutdownSignal:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        log.warning("SIGTERM: stopping the run at its next step and re-queueing it")
        self.flags.shutdown = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def bound_idle_transactions() -> None:
    """Have Postgres end this process's sessions once they sit idle inside a transaction for a lease.

    A job process frozen mid-flush (SIGSTOP, a suspended VM) would otherwise hold its row lock for
    good. With its session ended the lock goes, housekeeping recovers the run, and the process,
    when it wakes, reconnects and finds its claim gone (ClaimLost). Called by the job process only:
    a web request or a test may legitimately keep a transaction open while it waits.
    """
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    setting = f"-c idle_in_transaction_session_timeout={settings.LEASE_SECONDS * 1000}"
    if setting not in options.get("options", ""):
        options["options"] = f"{options.get('options', '')} {setting}".strip()
        connection.close()  # the next query reconnects with it
