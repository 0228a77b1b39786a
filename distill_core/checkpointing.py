"""Resumable checkpoints: model, optimiser, scheduler, RNG and data-order state, written atomically.

A run with an `output_dir` keeps `<output_dir>/checkpoint/last.pt`. Calling `distiller.run` again
with the same config continues from it, and N steps straight equal k steps + resume to N
(bitwise on CPU). The checkpoint is removed when the run succeeds.

A checkpoint is written to a temp file and renamed into place; `save`'s `before_replace` hook runs
between the two (the worker stores the metric points the checkpoint covers there, and refuses the
rename once its claim on the run is lost).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core.errors import CheckpointError
from distill_core.storage import writing

log = logging.getLogger(__name__)

# Keys that name or place a run without changing what it computes.
# `tune` picks kd settings before the run (tune.py); the run itself gets them in `kd`, with tuning off.
_NEUTRAL_KEYS = ("name", "output_dir", "tune")


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoint" / "last.pt"


def fingerprint(config_dict: dict[str, Any]) -> str:
    """A hash of everything in the config that changes the computation."""
    material = {k: v for k, v in config_dict.items() if k not in _NEUTRAL_KEYS}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any], before_replace: Callable[[], None] | None = None) -> None:
    """Write `state` with torch.save to a temp file beside `path`, then rename it into place.

    `before_replace()` runs once the temp file is complete, just before the rename makes it the
    resume point: a caller makes durable what the checkpoint covers there, or raises to refuse
    it (the temp file is removed and nothing under `path` changes). A full disk or an unwritable
    directory raises StorageError (naming the path and the free space), not torch's "enforce fail
    at inline_container.cc"; the previous checkpoint stays intact.
    """
    created = not path.parent.exists()
    with writing(path.parent, "checkpoint"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".last-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
            if before_replace is not None:
                before_replace()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            if created:  # leave the output directory as it was found
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
            raise


def load(path: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint at `path` if it belongs to this config; None when there is none."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated file from a crash mid-write cannot happen (atomic), but be clear
        raise CheckpointError(f"Cannot read the checkpoint {path}: {exc}; delete it to start over.") from exc
    if state.get("fingerprint") != expected_fingerprint:
        raise CheckpointError(f"{path} was written by a run with another config; use another output directory "
                              f"or delete the checkpoint to start over.", field="output_dir")
    log.info("Resuming from %s (step %d)", path, state["step"])
    return state


def remove(path: Path) -> None:
    """Delete the checkpoint and its folder, with any temp file a killed or stale attempt left there.

    A stale writer's temp file vanishing makes its rename fail, so it cannot bring back a checkpoint
    into a finished run's directory.
    """
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        for tmp in path.parent.glob(".last-*.pt"):
            tmp.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass  # something of the user's is in there: leave it
