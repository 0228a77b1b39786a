"""Run one experiment on several GPUs (or CPU processes): torchrun started by the job, events bridged back.

    run = runner(experiment)         # same call as distill_core.distiller.run
    results = run(config, sink=sink, should_cancel=flags.should_cancel, cache_dir=...)

The job process starts `torchrun --nproc-per-node=<gpus> -m distill_core.bridge` in a fresh
session (its own process group) with CUDA_VISIBLE_DEVICES set to the GPUs its claim booked, and
serves rank 0 on a Unix socket: events go into the job's sink (which may refuse a checkpoint:
the refusal reaches rank 0, and the sink's exception is raised here), and rank 0 reads the cancel
flag (SIGTERM to the job, a user's cancel, the runtime limit) from it every step. The job keeps
renewing the lease (its LeaseKeeper) while it waits, i.e. while any rank lives. If the job dies,
torchrun dies with it (PR_SET_PDEATHSIG) and so do the ranks (distill_core.bridge.die_with_parent).

How it ends: rank 0's last message decides (results, RunCancelled, DistillError naming the rank).
A rank that died without one (killed, out of memory) is named from torchrun's root-cause report
and raised as RuntimeError, which the job treats as a crash: the run is interrupted and re-queued,
and resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Any

from distill_core import parallel
from distill_core.bridge import KEY_ENV, SOCKET_ENV
from distill_core.errors import DistillError, RunCancelled

log = logging.getLogger(__name__)
CONNECT_POLL = 0.2


def runner(experiment: Any):
    """A `run(config, sink, should_cancel, cache_dir, hub_cache=None)` on experiment.gpus processes."""
    def run(config: Any, sink: Any, should_cancel: Any, cache_dir: Any = None, hub_cache: Any = None) -> dict:
        return run_parallel(config, experiment.gpus, list(experiment.gpu_ids or []), sink, should_cancel,
                            cache_dir, hub_cache)
    return run


def _death_signal() -> Any:
    """A preexec_fn that makes torchrun die with the job (PR_SET_PDEATHSIG), resolved before the fork.

    The child of a threaded process must not import or allocate much before exec: it only calls prctl.
    """
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    return lambda: prctl(1, signal.SIGKILL)


def run_parallel(config: Any, nproc: int, gpu_ids: list[int], sink: Any, should_cancel: Any,
                 cache_dir: Any = None, hub_cache: Any = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="distillery-ddp-") as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
        key = secrets.token_bytes(16)
        address = str(folder / "bridge.sock")
        listener = Listener(address, family="AF_UNIX", authkey=key)
        env = {**os.environ, SOCKET_ENV: address, KEY_ENV: key.hex(), parallel.ERROR_DIR_ENV: str(folder / "errors")}
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
        argv = ["distill_core.bridge", str(folder / "config.json")]
        argv += ["--cache-dir", str(cache_dir)] if cache_dir else []
        argv += ["--hub-cache", str(hub_cache)] if hub_cache else []
        output = open(folder / "torchrun.log", "w+b")  # noqa: SIM115  (closed below)
        proc = subprocess.Popen(parallel.torchrun_argv(nproc, argv), env=env, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_death_signal())
        try:
            bridge = Bridge(sink, should_cancel)
            conn = _accept(listener, proc)
            if conn is not None:
                bridge.serve(conn, proc)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # an exception here (the sink's): stop every rank
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            listener.close()
            output.seek(0)
            text = output.read().decode(errors="replace")
            output.close()
        for line in text.splitlines()[-40:]:
            log.info("torchrun: %s", line)
        return bridge.outcome(code, folder / "errors", text, nproc)


def _accept(listener: Listener, proc: subprocess.Popen) -> Any:
    """Rank 0's connection, or None when torchrun ends first (a rank failed before training)."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(listener.accept()), daemon=True)
    thread.start()
    while not box:
        if proc.poll() is not None:
            return None
        time.sleep(CONNECT_POLL)
    return box[0]


class Bridge:
    """Serve rank 0: events into the sink, the cancel flag out; remember how it ended."""

    def __init__(self, sink: Any, should_cancel: Any):
        self.sink, self.should_cancel = sink, should_cancel
        self.results: dict[str, Any] | None = None
        self.end: tuple | None = None
        self.refusal: BaseException | None = None

    def serve(self, conn: Any, proc: subprocess.Popen) -> None:
        while True:
            if not conn.poll(1.0):
                if proc.poll() is not None:
                    return
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "emit":
                _, kind, payload = message
                if kind == "result":
                    self.results = payload
                try:
                    self.sink.emit(kind, payload)
                    conn.send(("ok",))
                except Exception as exc:  # ClaimLost: refuse rank 0's write, raise it here once torchrun ends
                    self.refusal = exc
                    conn.send(("refused", str(exc)))
            elif message[0] == "cancel?":
                conn.send(bool(self.should_cancel and self.should_cancel()))
            elif message[0] == "end":
                self.end = message
                return

    def outcome(self, code: int, errors: Path, text: str, nproc: int) -> dict[str, Any]:
        if self.refusal is not None:
            raise self.refusal
        if self.end is not None and self.end[1] == "ok" and code == 0 and self.results is not None:
            return self.results
        if self.end is not None and self.end[1] == "cancelled":
            raise RunCancelled(self.end[3])
        rank, exitcode = root_cause(text)
        failure = _failure_of(errors, rank)
        if failure is None and self.end is not None and rank in (None, 0):
            _, _, kind, message, field, user_error = self.end
            failure = {"rank": 0, "type": kind, "message": message, "field": field, "user_error": user_error}
        if failure is None:
            what = f"ended with exit code {exitcode}" if exitcode is None or exitcode >= 0 else \
                f"was killed by {signal.Signals(-exitcode).name}"
            raise RuntimeError(f"rank {rank if rank is not None else '?'} of {nproc} {what} (torchrun exit {code}).")
        message = f"rank {failure['rank']} of {nproc} failed: {failure['type']}: {failure['message']}"
        if failure.get("user_error") or failure["type"] in DISTILL_ERRORS:
            raise DistillError(message, field=failure.get("field"))
        raise RuntimeError(message)


DISTILL_ERRORS = {"DistillError", "ConfigError", "DatasetError", "CheckpointError", "UnknownNameError",
                  "TrainingError", "StorageError"}


def root_cause(text: str) -> tuple[int | None, int | None]:
    """(rank, exit code) of torchrun's "Root Cause (first observed failure)" report; (None, None) without one."""
    if "Root Cause" not in text:
        return None, None
    report = text[text.index("Root Cause"):]
    rank = re.search(r"rank\s*:\s*(\d+)", report)
    exitcode = re.search(r"exitcode\s*:\s*(-?\d+)", report)
    return (int(rank.group(1)) if rank else None), (int(exitcode.group(1)) if exitcode else None)


def _failure_of(errors: Path, rank: int | None) -> dict[str, Any] | None:
    """The error file of `rank` (torchrun's root cause), else the earliest one any rank left."""
    if not errors.is_dir():
        return None
    if rank is not None and (errors / f"rank-{rank}.json").is_file():
        return json.loads((errors / f"rank-{rank}.json").read_text())
    return parallel.first_failure(errors) if rank is None else None
