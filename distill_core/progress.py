"""Progress through every phase of a run: throttled `phase` events with done/total, rate and ETA.

    phases = Phases(sink, should_cancel)
    with phases.phase("teacher", total=len(examples), unit="example") as p:
        for batch in batches:
            ...
            p.advance(len(batch))

Event `phase` {"name", "label", "index", "done", "total", "unit", "rate", "eta_seconds",
"elapsed_seconds", "finished"} is emitted when a phase starts, at most every `every` seconds while it
advances (never per example) and once when it ends. `total` is None where the work is not countable
(rate and ETA are then None too); `rate` is units per second since the phase started (or resumed).
Phases run in PHASES order; a run skips those it does not need (no augmentation, a cache hit, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from distill_core.errors import RunCancelled

# Name -> label, in the order a run goes through them: the one list the CLI, the sink and the page read.
PHASES: dict[str, str] = {
    "reading": "Reading data",
    "augmenting": "Augmenting",
    "tokenising": "Tokenising",
    "teacher": "Teacher labelling",
    "training": "Training",
    "evaluating": "Evaluating",
    "teacher_test": "Testing the teacher",
    "size": "Size report",
    "export": "Exporting",
}
EVERY = 1.0  # seconds between two events of one phase (tests set 0 to see every advance)
CANCELLED_IN = {"teacher": "Cancelled while the teacher was labelling the data."}


class _Sink(Protocol):
    def emit(self, kind: str, payload: dict[str, Any]) -> None: ...


class Phases:
    """Open phases one after another on a sink; check the cancel flag as each phase starts and ends.

    `should_cancel` is also polled while a phase advances when the phase asks for it (`poll_cancel`);
    the training loop and the teacher pass poll on their own every step/batch.
    """

    def __init__(self, sink: _Sink, should_cancel: Callable[[], bool] | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.sink, self.should_cancel, self.clock = sink, should_cancel, clock
        self.every = EVERY if every is None else every

    def phase(self, name: str, total: int | None = None, unit: str = "example", poll_cancel: bool = False) -> Phase:
        if name not in PHASES:
            raise KeyError(f"Unknown phase {name!r}; known: {', '.join(PHASES)}")
        return Phase(self, name, total, unit, poll_cancel)

    def check_cancel(self, name: str) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise RunCancelled(CANCELLED_IN.get(name, f"Cancelled during {PHASES[name].lower()}."))


class Phase:
    """One phase in progress; a context manager that emits its start and its end."""

    def __init__(self, owner: Phases, name: str, total: int | None, unit: str, poll_cancel: bool):
        self.owner, self.name, self.total, self.unit, self.poll_cancel = owner, name, total, unit, poll_cancel
        self.done = 0
        self._base_done = 0
        self._started = self._base_time = self._last_emit = owner.clock()

    def __enter__(self) -> Phase:
        self.owner.check_cancel(self.name)
        self._started = self._base_time = self._last_emit = self.owner.clock()
        self._emit(False)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.owner.check_cancel(self.name)  # also after the last phase, and after ones that cannot poll
            if self.total is not None:
                self.done = max(self.done, self.total)
            self._emit(True)

    def resume_at(self, done: int) -> None:
        """Count from `done` (a resumed run's step): the rate covers only the work done in this process."""
        self.done = self._base_done = done
        self._base_time = self.owner.clock()

    def advance(self, n: int = 1) -> None:
        self.update_to(self.done + n)

    def update_to(self, done: int) -> None:
        """Set the units done; emit if `every` seconds have passed since the last event."""
        self.done = max(self.done, done)  # monotone even if a caller re-reports
        now = self.owner.clock()
        if now - self._last_emit >= self.owner.every:
            self._last_emit = now
            self._emit(False)
            if self.poll_cancel:
                self.owner.check_cancel(self.name)

    def _emit(self, finished: bool) -> None:
        now = self.owner.clock()
        elapsed = now - self._base_time
        rate = (self.done - self._base_done) / elapsed if self.total is not None and elapsed > 0 else None
        eta = None
        if rate and self.total is not None and not finished:
            eta = round(max(0, self.total - self.done) / rate, 1)
        self.owner.sink.emit("phase", {
            "name": self.name, "label": PHASES[self.name], "index": list(PHASES).index(self.name),
            "done": self.done, "total": self.total, "unit": self.unit,
            "rate": round(rate, 3) if rate is not None else None, "eta_seconds": eta,
            "elapsed_seconds": round(now - self._started, 3), "finished": finished,
        })
