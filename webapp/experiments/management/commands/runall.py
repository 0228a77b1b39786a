"""Run the web server, one Celery worker and beat as child processes; Ctrl-C stops them all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from workers.launch import beat_argv, worker_argv


class Command(BaseCommand):
    help = "Start the dashboard, one worker and beat together (what `make run` uses)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--pool", action="append", default=None, help="pool(s) the worker serves")

    def handle(self, *args, addr: str, pool: list[str] | None, **options):
        children = {
            "web": [sys.executable, "manage.py", "runserver", addr, "--noreload"],
            "worker": worker_argv(pool or ["default"]),
            "beat": beat_argv(),
        }
        procs = {name: subprocess.Popen(argv) for name, argv in children.items()}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(self.style.SUCCESS(f"Distillery is running on http://{addr}/ — Ctrl-C stops it."))
        exit_code = 0
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others.")
                        exit_code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        sys.exit(exit_code)
