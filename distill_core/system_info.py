"""What a run's environment.json records beyond torch's own settings: packages, commit, host, CPU, GPU, teacher files.

Every probe is best-effort and cheap: a missing `git`, `/proc/cpuinfo` or `nvidia-smi` leaves its field None
instead of failing the run. Teacher checksums hash each file once per (path, size, mtime) in this process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20
# Where a deployment without a .git directory names its release (the Docker image sets it at build time).
RELEASE_ENV = "DISTILLERY_RELEASE"


def packages() -> dict[str, str]:
    """Every installed distribution of this interpreter, name -> version, sorted by lower-case name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(name, dist.version)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


@functools.cache
def project_revision() -> dict[str, Any]:
    """The project's git commit (and whether the tree had local changes), else $DISTILLERY_RELEASE, else the version."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or read_head(REPO / ".git")) if (REPO / ".git").exists() else None
    if commit:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None, "release": None}
    release = os.environ.get(RELEASE_ENV)
    if not release:
        try:
            release = importlib.metadata.version("distillery")
        except importlib.metadata.PackageNotFoundError:
            release = None
    return {"commit": None, "dirty": None, "release": release}


def read_head(dot_git: Path) -> str | None:
    """The checked-out commit read from the files, for a host without the git program (the slim Docker image)."""
    try:
        gitdir = dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            gitdir = (dot_git.parent / dot_git.read_text().split(":", 1)[1].strip()).resolve()
        common = gitdir / "commondir"
        common = (gitdir / common.read_text().strip()).resolve() if common.is_file() else gitdir
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        for base in (gitdir, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        for line in packed.read_text().splitlines() if packed.is_file() else []:
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError):
        pass
    return None


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux, sysctl on macOS), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return platform.processor() or platform.machine()


@functools.cache
def gpu_driver() -> str | None:
    """The NVIDIA driver version from nvidia-smi, None without one."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines() if done.returncode == 0 else []
    return lines[0].strip() if lines else None


def gpus() -> list[dict[str, Any]]:
    """Every visible CUDA device: name, memory, compute capability (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append({"index": index, "name": props.name, "memory_bytes": int(props.total_memory),
                      "capability": f"{props.major}.{props.minor}"})
    return found


def host() -> dict[str, Any]:
    """Host name, OS, CPU model and count, and the GPUs with driver and CUDA runtime versions."""
    import torch

    devices = gpus()
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": devices,
        "gpu_driver": gpu_driver() if devices else None,
        "cuda_runtime": torch.version.cuda,
    }


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def checksums(directory: str | Path) -> dict[str, str] | None:
    """sha256 of every file under a teacher checkpoint directory, by relative path; None when it is not one."""
    root = Path(directory)
    if not root.is_dir():
        return None
    out: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):  # follows Hub snapshots' links to blobs
        if ".cache" in path.relative_to(root).parts:  # huggingface_hub's own bookkeeping, not the model
            continue
        stat = path.stat()
        try:
            out[path.relative_to(root).as_posix()] = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            log.warning("Could not checksum %s: %s", path, exc)
    return out


def teacher_files(paths: list[str]) -> dict[str, dict[str, str] | None]:
    """Checksums of each teacher (ensemble members included), keyed by the path the config names."""
    return {str(path): checksums(path) for path in paths}
