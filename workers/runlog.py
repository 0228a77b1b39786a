"""The last lines a run logged (distill_core and the worker), kept for the experiment page."""

from __future__ import annotations

import collections
import logging

LOGGERS = ("distill_core", "workers")


class RunLog(logging.Handler):
    """A logging handler that keeps a run's last `limit` lines; `with RunLog() as run_log:` attaches it."""

    def __init__(self, limit: int = 200):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=limit)
        self.changed = False
        self._levels: dict[str, int] = {}
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record)[:2000])
            self.changed = True
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        self.changed = False
        return "\n".join(self.lines)

    def __enter__(self) -> RunLog:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._levels.get(name, logging.NOTSET))
