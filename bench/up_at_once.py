"""Time a fresh clone's `make run`: until the dashboard answers, and until the first distillation finishes.

    python bench/up_at_once.py [--repo .] [--addr 127.0.0.1:8123] [--venv .venv] [--timeout 1200] [--threads 1]

Clones `--repo` (its HEAD) into a temporary folder, links `--venv` in as `.venv` so no install runs
(`make -o install run`: the figures start after the install), starts `make run ADDR=...`, polls the
login page and the clone's SQLite database, stops everything and prints one JSON line: seconds to
the first answer of the dashboard, to the demo teacher's training run finishing and to the first
SUCCEEDED distillation, with the load average at start and end (the machine's other work) and
the CPU time all of make run's processes used (on a busy machine, a better guide to the idle
figure than the wall clock). `--threads 1` sets OMP_NUM_THREADS=1 for everything make run starts:
on a shared machine torch's two threads spin-wait on each other when one is parked, which inflates
the CPU time; with one thread the CPU time is the work itself, which an idle core does in about that
many seconds of wall time (a bound on the idle 2-core figure: a second thread can only shorten it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def runs(db: Path) -> dict[str, dict]:
    """{kind: status, step, test accuracy, seconds from start to end} of the demo's runs, from the clone's SQLite file."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute(
                "SELECT json_extract(config, '$.kind'), status, current_step, total_steps, "
                "json_extract(results, '$.student.accuracy'), "
                "round((julianday(finished_at) - julianday(started_at)) * 86400, 1) FROM experiments_experiment"
            ).fetchall()
    except sqlite3.Error:  # not migrated yet, or locked for a moment
        return {}
    return {kind: {"status": status, "step": f"{step}/{total}", "test_accuracy": accuracy, "run_seconds": seconds}
            for kind, status, step, total, accuracy, seconds in rows}


def session_cpu_seconds(session: int) -> float:
    """User + system CPU of every live process in `session`, with the children each has already reaped."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[3]) == session:  # fields[0] is the state; sid is field 6 of stat(5)
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--addr", default="127.0.0.1:8123")
    parser.add_argument("--venv", default=str(Path(__file__).resolve().parent.parent / ".venv"))
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for make run's processes (default: unset)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="distillery-up-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
        (clone / ".venv").symlink_to(Path(args.venv).resolve())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "DISTILLERY_"))}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        log = (Path(tmp) / "make-run.log").open("w")
        load_start = os.getloadavg()
        started = time.monotonic()
        proc = subprocess.Popen(["make", "-o", "install", "run", f"ADDR={args.addr}"], cwd=clone, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        marks: dict[str, float] = {}
        cpu = 0.0
        outcome: dict[str, dict] = {}
        try:
            while time.monotonic() - started < args.timeout and proc.poll() is None:
                now = round(time.monotonic() - started, 1)
                if "dashboard" not in marks and answered(f"http://{args.addr}/accounts/login/"):
                    marks["dashboard"] = now
                outcome = runs(clone / "var" / "distillery.sqlite3")
                ended = {kind for kind, run in outcome.items() if run["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")}
                if "finetune_teacher" in ended:
                    marks.setdefault("teacher_finished", now)
                cpu = session_cpu_seconds(proc.pid) or cpu
                if "distill" in ended:
                    marks["first_distillation_finished"] = now
                    break
                time.sleep(1)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
        tail = (Path(tmp) / "make-run.log").read_text(errors="replace").splitlines()[-15:]
    print(json.dumps({"bench": "up_at_once", "threads": args.threads, "seconds": marks, "runs": outcome, "cpus": os.cpu_count(),
                      "cpu_seconds_of_make_run": round(cpu, 1),
                      "loadavg_start": [round(x, 2) for x in load_start],
                      "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                      **({} if "first_distillation_finished" in marks else {"log_tail": tail})}))


if __name__ == "__main__":
    main()
