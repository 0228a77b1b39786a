"""A stand-in for distill_core.distiller.run that trains nothing (DISTILLERY_FAKE_DISTILLER=1).

Fault and queue tests run hundreds of jobs through real workers; this keeps each one cheap
while exercising the same sink, lease and stop paths. `config["fake"]` says what to do:
{"steps": 5, "sleep": 0.1, "fail": false, "crash": false}.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def run(config, sink=None, should_cancel: Callable[[], bool] | None = None, **options: Any) -> dict[str, Any]:
    from distill_core.errors import DistillError, RunCancelled

    fake = config.get("fake", {}) if isinstance(config, dict) else {}
    steps, pause = int(fake.get("steps", 1)), float(fake.get("sleep", 0.0))
    if fake.get("fail"):
        raise DistillError("This fake run always fails.")
    if fake.get("crash"):
        raise RuntimeError("This fake run always crashes.")
    sink.emit("start", {"total_steps": steps})
    for step in range(1, steps + 1):
        time.sleep(pause)
        sink.emit("step", {"step": step, "epoch": 1, "metrics": {"loss": 1.0 / step}})
        if should_cancel is not None and should_cancel():
            raise RunCancelled(f"Cancelled at step {step}.")
    return {"steps": steps}
