"""A torchrun rank of a worker's run: `python -m distill_core.bridge config.json [--cache-dir D] [--hub-cache H]`.

The worker's job process (workers/ddp_run.py) starts torchrun with this module on every rank and
listens on a Unix socket (DISTILLERY_BRIDGE_SOCKET, key DISTILLERY_BRIDGE_KEY). Rank 0 connects
and sends each event there; the job feeds it to its database sink and answers, so a refused
checkpoint or export (the claim was lost) refuses it here too. Rank 0 asks the job for the cancel
flag every step (parallel.any_rank passes it to every rank), and ends with one message:
("end", "ok") or ("end", "cancelled" | "error", type, message, field). The other ranks talk only
to their peers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from multiprocessing.connection import Client
from typing import Any

from distill_core import parallel
from distill_core.errors import DistillError, RunCancelled

SOCKET_ENV, KEY_ENV = "DISTILLERY_BRIDGE_SOCKET", "DISTILLERY_BRIDGE_KEY"


class Refused(RuntimeError):
    """The job's sink refused an event (it lost its claim on the run)."""


class BridgeSink:
    """Rank 0's sink: every event goes to the job, which answers ("ok",) or ("refused", why)."""

    def __init__(self, conn: Any):
        self.conn = conn

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        self.conn.send(("emit", kind, payload))
        reply = self.conn.recv()
        if reply[0] == "refused":
            raise Refused(reply[1])

    def should_cancel(self) -> bool:
        self.conn.send(("cancel?",))
        return bool(self.conn.recv())


def die_with_parent() -> None:
    """Linux: end this rank when torchrun ends (SIGKILLed with its job), instead of waiting on dead peers."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run

    parser = argparse.ArgumentParser(prog="python -m distill_core.bridge")
    parser.add_argument("config")
    parser.add_argument("--cache-dir")
    parser.add_argument("--hub-cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"rank {os.environ.get('RANK', '0')} %(levelname)s %(name)s: "
                                                   f"%(message)s")
    die_with_parent()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    conn = Client(os.environ[SOCKET_ENV], family="AF_UNIX", authkey=bytes.fromhex(os.environ[KEY_ENV])) \
        if main_rank else None
    sink = BridgeSink(conn) if conn is not None else None
    try:
        run(ExperimentConfig.load(args.config), sink=sink, should_cancel=sink.should_cancel if sink else None,
            cache_dir=args.cache_dir, hub_cache=args.hub_cache)
    except BaseException as exc:
        parallel.record_failure(exc)
        if conn is not None:
            kind = "cancelled" if isinstance(exc, RunCancelled) else "error"
            conn.send(("end", kind, type(exc).__name__, str(exc), getattr(exc, "field", None),
                       isinstance(exc, DistillError)))
        return 130 if isinstance(exc, RunCancelled) else 1
    if conn is not None:
        conn.send(("end", "ok"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
