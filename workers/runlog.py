"""The last lines a run logged (distill_core and the worker), kept for the experiment page."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

LOGGERS = ("distill_core", "workers")


class RunLog(logging.Handler):
    """A logging handler that keeps a run's last `limit` lines; `with RunLog() as run_log:` attaches it.

    With `path`, every line is also appended to that file (the full log the artifacts tab serves);
    a file that cannot be written only costs the full log, never the run.
    """

    def __init__(self, limit: int = 200, path: Path | None = None):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=limit)
        self.path = path
        self._file = None
        self.changed = False
        self._levels: dict[str, int] = {}
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.lines.append(line[:2000])
            self.changed = True
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        self.changed = False
        return "\n".join(self.lines)

    def __enter__(self) -> RunLog:
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
            except OSError:
                logging.getLogger(__name__).warning("Cannot write the full run log to %s", self.path, exc_info=True)
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
        if self._file is not None:
            self._file.close()
            self._file = None
