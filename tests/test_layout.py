"""The project's packaging: compose wiring, CI services, and the one-way dependency rule."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service_from_one_image():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "housekeeping", "beat"} <= set(services)
    app_images = {services[name]["image"] for name in ("web", "worker", "housekeeping", "beat")}
    assert app_images == {"distillery:latest"}
    for name in ("web", "worker", "housekeeping", "beat"):
        assert services[name]["build"] == "."


def test_compose_wires_database_broker_and_artifacts():
    services = compose()["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["DISTILLERY_ARTIFACT_ROOT"] == "/artifacts"
        assert "artifacts:/artifacts" in services[name]["volumes"]


def test_compose_worker_reserves_a_gpu_and_runs_one_job_at_a_time():
    worker = compose()["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    cmd = worker["command"]
    assert cmd[cmd.index("--concurrency") + 1] == "1"
    assert cmd[cmd.index("--max-tasks-per-child") + 1] == "1"
    assert worker["environment"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_compose_commands_exist_in_the_project(settings):
    services = compose()["services"]
    web = " ".join(services["web"]["command"])
    assert "manage.py migrate" in web and "webapp.wsgi:application" in web
    assert (REPO / "manage.py").exists() and (REPO / "webapp" / "wsgi.py").exists()
    for name in ("worker", "beat"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["celery", "-A", "workers"]
        assert (REPO / "workers" / "celery.py").exists()
    from workers.celery import app

    app.loader.import_default_modules()
    assert {"workers.tasks.run_next", "workers.tasks.housekeeping"} <= set(app.tasks)
    queues = services["worker"]["command"][services["worker"]["command"].index("--queues") + 1].split(",")
    assert queues == ["distillery", "distillery.default"]
    from workers.launch import housekeeping_argv

    settings.HOUSEKEEPING_QUEUE = "distillery-housekeeping"  # compose keeps the default prefix; xdist changes it
    housekeeping = services["housekeeping"]["command"]
    assert housekeeping == ["celery", *housekeeping_argv()[3:]], "compose runs what the launch helper builds"
    assert shutil.which("gunicorn", path=str(Path(os.sys.executable).parent)), "gunicorn must be installed"


def test_requirements_pin_torch_exactly():
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    pins = [line for line in lines if line]
    assert "torch==2.13.0" in pins
    assert all("==" in line for line in pins), "every runtime requirement is pinned with =="


@pytest.mark.skipif(not os.environ.get("DISTILLERY_REQUIRE_SERVICES"), reason="only CI insists on real services")
def test_ci_runs_against_postgres_and_redis(settings):
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    import redis

    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).ping()


def test_compose_gpu_workers_each_own_one_gpu_under_a_unique_name():
    services = compose()["services"]
    workers = {name: s for name, s in services.items() if s.get("command", [None])[:4] == ["celery", "-A", "workers",
                                                                                           "worker"]
               and name != "housekeeping"}  # the housekeeping worker needs no GPU
    assert len(workers) >= 2
    names = [s["command"][s["command"].index("--hostname") + 1] for s in workers.values()]
    gpus = [s["environment"]["CUDA_VISIBLE_DEVICES"] for s in workers.values()]
    assert len(set(names)) == len(names) and len(set(gpus)) == len(gpus)
    for s in workers.values():
        assert s["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [s["environment"]["CUDA_VISIBLE_DEVICES"]]


def test_make_install_puts_the_distillery_command_on_the_venv():
    import importlib
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    module, _, function = project["project"]["scripts"]["distillery"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert project["tool"]["setuptools"]["packages"]["find"]["include"][0] == module.split(".")[0]
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q --no-deps -e ." in makefile
    for target in ("install:", "install-dev:"):
        line = next(line for line in makefile.splitlines() if line.startswith(target))
        assert "$(CLIENT_STAMP)" in line, f"`make {target[:-1]}` must install the client"
