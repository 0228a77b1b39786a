"""The environment a run computed in, recorded next to its config so it can be re-run identically.

`<output_dir>/environment.json` holds the library versions, the device, torch's thread counts and
the seed. `python -m distill_core run <dir>/config.json` reads the record beside the config, uses
its thread counts and warns about every other difference (README "Reproducing a run" says which
differences change the numbers).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
FILENAME = "environment.json"
# Fields whose difference can change a run's numbers, in the order a warning lists them.
_COMPARED = ("python", "torch", "transformers", "numpy", "device", "device_name", "cuda", "cudnn",
             "threads", "interop_threads", "machine", "cpu")


def record(seed: int, device: torch.device, teachers: list[str] | None = None) -> dict[str, Any]:
    """What this process would compute with: versions, device, thread counts, seed, and where it ran.

    Format 2 adds every installed package, the project's commit or release, the host (CPU model and
    count, GPUs, driver, CUDA runtime) and, given the teachers' directories, their files' sha256
    (system_info.py). Only the fields in _COMPARED can change a run's numbers.
    """
    import numpy
    import transformers

    from distill_core import system_info

    cuda = device.type == "cuda"
    return {
        "format": 2,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "seed": seed,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "project": system_info.project_revision(),
        "host": system_info.host(),
        "packages": system_info.packages(),
        "teacher_files": system_info.teacher_files(teachers) if teachers else {},
    }


def write(output_dir: str | Path, env: dict[str, Any]) -> Path:
    """Write `env` as `<output_dir>/environment.json`; returns the path."""
    path = Path(output_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env, indent=2) + "\n", encoding="utf-8")
    return path


def read_beside(config_path: str | Path) -> dict[str, Any] | None:
    """The environment record in the config file's directory, or None when there is none."""
    path = Path(config_path).parent / FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("Ignoring %s: %s", path, exc)
        return None


def apply(recorded: dict[str, Any]) -> None:
    """Use the recorded thread counts: CPU kernels may sum in another order with another count."""
    if recorded.get("threads"):
        torch.set_num_threads(int(recorded["threads"]))
    if recorded.get("interop_threads"):
        try:
            torch.set_num_interop_threads(int(recorded["interop_threads"]))
        except RuntimeError:  # only settable before the first inter-op parallel work; harmless to skip
            log.info("Could not set the inter-op thread count to %s", recorded["interop_threads"])


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable lines for every compared field that differs between two records."""
    return [f"{key}: recorded {recorded.get(key)!r}, now {current.get(key)!r}" for key in _COMPARED
            if key in recorded and recorded.get(key) != current.get(key)]
