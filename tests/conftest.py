"""Fixtures shared by every test package: real worker processes on the configured services."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO / "webapp" / "experiments" / "demo_data" / "thucnews"


# Markers of tests that start real processes (a Celery worker, Chromium) or fuzz for seconds; such a test is `slow`.
SLOW_MARKERS = ("worker", "browser", "fuzz")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark `slow` every test that starts a worker or a browser or fuzzes, so `-m "not slow"` needs no list."""
    for item in items:
        if "worker_process" in item.fixturenames or any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and not os.environ.get("DISTILLERY_QUEUE_PREFIX", "").endswith(f"-{worker}"):
        raise pytest.UsageError("Under pytest-xdist add `-p tests.xdist_worker_env` (as `make test` does): without it "
                                "the xdist processes share one var folder and one set of Celery queues.")


def database_url_for_tests() -> str:
    """A DATABASE_URL that points a subprocess at the database this test session uses."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """A real `celery worker` subprocess (the same command line `make run` uses), or `argv` (beat, housekeeping)."""

    def __init__(self, log_path: Path, pools: list[str], name: str, extra_env: dict[str, str] | None = None,
                 argv: list[str] | None = None):
        from workers.launch import worker_argv

        env = dict(os.environ)
        env.update({"DATABASE_URL": database_url_for_tests(), "PYTHONUNBUFFERED": "1"})
        env.update(extra_env or {})
        self.log_path = log_path
        self._log = open(log_path, "wb")
        argv = argv or worker_argv(pools, name=name)
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture
def worker_process(transactional_db, tmp_path):
    """Start worker subprocesses on demand; they are stopped when the test ends."""
    started: list[WorkerProcess] = []

    def start(pools: list[str] | None = None, name: str = "test0", env: dict[str, str] | None = None,
              argv: list[str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{name}.log", pools or ["default"], name, env, argv)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout: float, interval: float = 0.5, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {message() if callable(message) else message}")


def write_demo_slice(directory: Path, train: int = 200, dev: int = 60, test: int = 60) -> dict[str, Path]:
    """Copy the first lines of each bundled demo split (THUCNews) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, count in (("train", train), ("dev", dev), ("test", test)):
        lines = (DEMO_DATA / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[:count]
        paths[split] = directory / f"{split}.tsv"
        paths[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def demo_labels() -> list[str]:
    return (DEMO_DATA / "labels.txt").read_text(encoding="utf-8").split()
