"""The recorded environment of a run (distill_core.environment.record) for its page, compare and reproduce steps."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse

from webapp.accounts.access import get_owned
from webapp.experiments import compare as cmp
from webapp.experiments.models import Experiment

# Always differ between runs and say nothing about the numbers.
NOT_COMPARED = ("executable", "seed")


def _env(experiment: Experiment) -> dict[str, Any]:
    """The experiment's record; older runs have one only inside their results."""
    if isinstance(experiment.environment, dict):
        return experiment.environment
    results = experiment.results if isinstance(experiment.results, dict) else {}
    return results.get("environment") if isinstance(results.get("environment"), dict) else {}


def summary(experiment: Experiment) -> dict[str, Any] | None:
    """Rows (label, value) for the page, the packages, the teachers' checksums; None without a record."""
    env = _env(experiment)
    if not env:
        return None
    host = env.get("host") if isinstance(env.get("host"), dict) else {}
    project = env.get("project") if isinstance(env.get("project"), dict) else {}
    gpus = host.get("gpus") or []
    revision = project.get("commit") and (project["commit"][:12] + (" (with local changes)" if project.get("dirty")
                                                                      else ""))
    rows = [
        ("Python", env.get("python")), ("torch", env.get("torch")), ("transformers", env.get("transformers")),
        ("numpy", env.get("numpy")),
        ("Distillery", revision or (f"release {project['release']}" if project.get("release") else None)),
        ("Host", host.get("hostname")), ("OS", host.get("os") or env.get("platform")),
        ("CPU", f"{host.get('cpu_model') or env.get('cpu')} × {host['cpu_count']}" if host.get("cpu_count")
         else env.get("cpu")),
        ("Device", env.get("device")),
        ("GPUs", ", ".join(f"{g.get('name')} ({(g.get('memory_bytes') or 0) / 2**30:.0f} GiB)" for g in gpus)
         if gpus else None),
        ("GPU driver", host.get("gpu_driver")), ("CUDA", env.get("cuda") or host.get("cuda_runtime")),
        ("cuDNN", env.get("cudnn")), ("Threads", f"{env.get('threads')} intra-op, {env.get('interop_threads')} inter-op"
                                      if env.get("threads") else None),
    ]
    teachers = []
    for path, files in (env.get("teacher_files") or {}).items():
        if isinstance(files, dict):
            digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
            teachers.append({"path": path, "files": sorted(files.items()), "digest": digest})
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    return {"rows": [(label, value) for label, value in rows if value not in (None, "")],
            "packages": sorted(packages.items(), key=lambda kv: kv[0].lower()), "teachers": teachers,
            "commit": project.get("commit"), "release": project.get("release"),
            "pins": [f"{name}=={env[name]}" for name in ("torch", "transformers", "numpy") if env.get(name)],
            # torch's "+cpu"/"+cu128" builds come from PyTorch's own index, not PyPI
            "torch_index": "https://download.pytorch.org/whl/" + str(env["torch"]).split("+", 1)[1]
            if "+" in str(env.get("torch") or "") else None}


def differences(experiments: list[Experiment]) -> list[dict[str, Any]]:
    """Rows {"key", "values"} of every environment field (packages and checksums included) that differs."""
    envs = [_env(e) for e in experiments]
    if sum(1 for env in envs if env) < 2:
        return []
    return cmp.config_diff(envs, ignore=NOT_COMPARED)


def requirements_text(experiment: Experiment) -> str:
    """Every package of the run pinned, as a pip requirements file."""
    packages = _env(experiment).get("packages") or {}
    lines = [f"{name}=={version}" for name, version in sorted(packages.items(), key=lambda kv: kv[0].lower())
             if name.lower() != "distillery"]
    return f"# The packages experiment {experiment.pk} ran with (distill_core.environment).\n" + "\n".join(lines) + "\n"


def _attachment(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def environment_json(request, pk: int):
    """The run's environment.json: beside config.json, `python -m distill_core run` uses and checks it."""
    experiment = get_owned(request.user, Experiment, pk=pk)
    env = _env(experiment)
    if not env:
        raise Http404("This run has not recorded its environment yet.")
    return _attachment(json.dumps(env, indent=2, ensure_ascii=False) + "\n", "environment.json",
                       "application/json; charset=utf-8")


@login_required
def requirements(request, pk: int):
    experiment = get_owned(request.user, Experiment, pk=pk)
    if not _env(experiment).get("packages"):
        raise Http404("This run recorded no package list.")
    return _attachment(requirements_text(experiment), f"experiment-{experiment.pk}-requirements.txt",
                       "text/plain; charset=utf-8")
