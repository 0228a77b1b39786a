"""Load: concurrent runs streaming metrics while dashboard clients poll, against gunicorn on loopback.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/distillery_bench_load \
        .venv/bin/python bench/load.py --runs 20 --clients 50 --duration 300

Starts the production web server (gunicorn, webapp.wsgi) on 127.0.0.1 and, for --duration seconds:
- --runs threads each stream a run's metrics through the worker's own DatabaseSink (step events
  with 4 keys at --steps-per-second, a dev evaluation every 100 steps, flushes every 2 s, the
  heartbeat and cancel-flag read each flush): the database load of that many training runs,
  without the CPU of training them (a 2-core machine cannot train 20 models at once);
- --clients threads each act as an open experiment page: status.json and metrics.json?after=
  <cursor> every 2 s, as static/js/experiment.js does, plus the list page every 10th poll.
Only loopback addresses are used; every loop is bounded by --duration. Prints one JSON line:
requests, errors (non-2xx or failed), p50/p95/max latency per endpoint, points written.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}

    def record(self, name: str, ms: float, ok: bool) -> None:
        with self.lock:
            self.latency.setdefault(name, []).append(ms)
            if not ok:
                self.errors[name] = self.errors.get(name, 0) + 1


def stream_run(experiment_id: int, deadline: float, steps_per_second: float) -> int:
    """One simulated run: step events through DatabaseSink, as the worker writes them."""
    from django.db import connection

    from workers.sink import DatabaseSink

    sink = DatabaseSink(experiment_id)
    total = int(steps_per_second * (deadline - time.monotonic())) + 1
    sink.emit("start", {"total_steps": total})
    step = 0
    try:
        while time.monotonic() < deadline and step < total:
            step += 1
            sink.emit("step", {"step": step, "metrics": {"loss": 1.0 / step, "kd_loss": 0.5 / step,
                                                          "hard_loss": 0.7 / step, "lr": 1e-3}})
            if step % 100 == 0:
                sink.emit("eval", {"step": step, "split": "dev", "metrics": {"accuracy": step / total,
                                                                              "macro_f1": step / total}})
            sink.should_cancel()
            time.sleep(1.0 / steps_per_second)
        sink.flush()
    finally:
        connection.close()
    return step * 4


def poll_page(base: str, cookie: str, experiment_id: int, deadline: float, stats: Stats) -> None:
    """An open experiment page: status + metrics after the cursor every 2 s, the list now and then."""
    cursor, polls = -1, 0
    while time.monotonic() < deadline:
        urls = [("status", f"/experiments/{experiment_id}/status.json"),
                ("metrics", f"/experiments/{experiment_id}/metrics.json?after={cursor}")]
        if polls % 10 == 0:
            urls.append(("list", "/"))
        for name, path in urls:
            started = time.perf_counter()
            ok = False
            try:
                request = urllib.request.Request(base + path, headers={"Cookie": f"sessionid={cookie}"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    body = response.read()
                    ok = 200 <= response.status < 300 and b"/accounts/login" not in body[:2000]
                if name == "metrics":
                    cursor = json.loads(body).get("cursor", cursor)
            except (urllib.error.URLError, OSError, ValueError):
                ok = False
            stats.record(name, (time.perf_counter() - started) * 1000.0, ok)
        polls += 1
        time.sleep(max(0.0, 2.0 - (time.perf_counter() - started)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--steps-per-second", type=float, default=10.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from webapp.accounts.models import Membership, Team
    from webapp.experiments.models import Experiment
    from webapp.registry.models import Checkpoint, Dataset

    call_command("migrate", verbosity=0)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on each request without it
    tag = f"load-{os.getpid()}"
    team = Team.objects.create(name=tag, slug=tag)
    user = get_user_model().objects.create_user(tag, password="unused-" + tag)
    Membership.objects.create(team=team, user=user)
    ckpt = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    data = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])
    runs = [Experiment.objects.create(team=team, owner=user, name=f"run {i}", teacher=ckpt, dataset=data,
                                      student_type="textcnn", config={}, status=Experiment.Status.RUNNING)
            for i in range(args.runs)]
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()

    port = free_port()
    env = dict(os.environ, DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "webapp.wsgi", "--bind", f"127.0.0.1:{port}",
                               "--workers", str(args.web_workers), "--threads", str(args.web_threads),
                               "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    stats = Stats()
    points: list[int] = []
    try:
        for _ in range(100):  # wait for the server, at most ~20 s
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        deadline = time.monotonic() + args.duration
        threads = [threading.Thread(target=lambda e=e: points.append(stream_run(e.pk, deadline,
                                                                                args.steps_per_second)))
                   for e in runs]
        threads += [threading.Thread(target=poll_page, args=(base, session.session_key, runs[i % len(runs)].pk,
                                                             deadline, stats))
                    for i in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        Experiment.objects.filter(team=team).delete()  # experiments protect their teacher and dataset
        team.delete()
        user.delete()
        session.delete()

    endpoints = {name: {"requests": len(ms), "errors": stats.errors.get(name, 0), "p50_ms": percentile(ms, 0.5),
                        "p95_ms": percentile(ms, 0.95), "max_ms": percentile(ms, 1.0),
                        "mean_ms": round(statistics.fmean(ms), 1) if ms else None}
                 for name, ms in sorted(stats.latency.items())}
    print(json.dumps({
        "bench": "load", "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "runs": args.runs, "clients": args.clients, "seconds": round(elapsed, 1),
        "requests": sum(e["requests"] for e in endpoints.values()),
        "errors": sum(e["errors"] for e in endpoints.values()),
        "p95_ms_all": percentile([ms for v in stats.latency.values() for ms in v], 0.95),
        "points_written": sum(points), "endpoints": endpoints,
    }))


if __name__ == "__main__":
    main()
