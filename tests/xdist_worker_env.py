"""Per-process isolation under pytest-xdist, loaded with `-p tests.xdist_worker_env` (make test) before pytest-django reads
the settings; tests/conftest.py refuses an xdist run without it.

Each xdist worker (gw0, gw1, ...) gets its own DISTILLERY_VAR_DIR (SQLite file, filesystem broker, artifacts,
beat schedule) and DISTILLERY_QUEUE_PREFIX (every Celery queue name), and the Celery workers the tests start
inherit both, so a Celery worker of one xdist worker never consumes the other's wake-ups. pytest-django gives
each xdist worker its own test database; tmp_path is per worker too. Without xdist this does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def isolate(worker_id: str) -> None:
    var_dir = os.environ.get("DISTILLERY_VAR_DIR") or str(Path(__file__).resolve().parent.parent / "var" / "test")
    os.environ["DISTILLERY_VAR_DIR"] = str(Path(var_dir) / worker_id)
    os.environ["DISTILLERY_QUEUE_PREFIX"] = f"{os.environ.get('DISTILLERY_QUEUE_PREFIX', 'distillery')}-{worker_id}"


if os.environ.get("PYTEST_XDIST_WORKER"):
    isolate(os.environ["PYTEST_XDIST_WORKER"])
