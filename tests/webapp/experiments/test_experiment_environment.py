"""The recorded environment on the experiment page, in its reproduce steps, its downloads and on /compare/."""

from __future__ import annotations

import json

from webapp.experiments.models import Experiment

S = Experiment.Status


def env(**changes) -> dict:
    base = {
        "format": 2, "python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.23.0", "numpy": "2.4.6",
        "seed": 7, "device": "cpu", "device_name": "cpu", "cuda": None, "cudnn": None, "threads": 4,
        "interop_threads": 4, "machine": "x86_64", "cpu": "x86_64", "platform": "Linux", "executable": "/x/python",
        "project": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "release": None},
        "host": {"hostname": "gpu-box-1", "os": "Linux-6", "cpu_model": "AMD EPYC 7763", "cpu_count": 64,
                 "gpus": [{"index": 0, "name": "NVIDIA H200", "memory_bytes": 150 * 2**30, "capability": "9.0"}],
                 "gpu_driver": "570.86", "cuda_runtime": "12.8"},
        "packages": {"torch": "2.13.0", "transformers": "5.23.0", "numpy": "2.4.6", "tqdm": "4.70.1"},
        "teacher_files": {"/teachers/acme/bert": {"config.json": "a" * 64, "model.safetensors": "b" * 64}},
    }
    for key, value in changes.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


def test_the_page_shows_the_environment_and_reproduce_steps_built_from_it(alice_client, make_experiment):
    experiment = make_experiment(S.SUCCEEDED, environment=env())
    page = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    for text in ("AMD EPYC 7763 × 64", "NVIDIA H200 (150 GiB)", "570.86", "gpu-box-1", "0123456789ab",
                 "git checkout 0123456789abcdef0123456789abcdef01234567",
                 "pip install --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu "
                 "transformers==5.23.0 numpy==2.4.6", "4 installed packages",
                 "model.safetensors", f"/experiments/{experiment.pk}/environment.json",
                 f"/experiments/{experiment.pk}/requirements.txt"):
        assert text in page, text


def test_the_environment_and_requirements_download(alice_client, make_experiment):
    experiment = make_experiment(S.SUCCEEDED, environment=env())
    response = alice_client.get(f"/experiments/{experiment.pk}/environment.json")
    assert json.loads(response.content) == env()
    requirements = alice_client.get(f"/experiments/{experiment.pk}/requirements.txt").content.decode()
    assert "torch==2.13.0\n" in requirements and "tqdm==4.70.1" in requirements


def test_a_run_without_a_record_has_no_environment_section(alice_client, make_experiment):
    experiment = make_experiment()
    page = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="environment"' not in page and "python -m distill_core run" in page
    assert alice_client.get(f"/experiments/{experiment.pk}/environment.json").status_code == 404


def test_other_teams_cannot_read_the_environment(charlie_client, make_experiment):
    experiment = make_experiment(S.SUCCEEDED, environment=env())
    for path in ("environment.json", "requirements.txt", ""):
        assert charlie_client.get(f"/experiments/{experiment.pk}/{path}").status_code == 404


def test_compare_lists_the_environment_fields_that_differ(alice_client, make_experiment):
    a = make_experiment(S.SUCCEEDED, name="a", environment=env())
    b = make_experiment(S.SUCCEEDED, name="b", environment=env(
        torch="2.14.0", packages={"torch": "2.14.0"}, host={"hostname": "laptop"},
        teacher_files={"/teachers/acme/bert": {"config.json": "c" * 64, "model.safetensors": "b" * 64}},
        executable="/elsewhere/python"))
    response = alice_client.get(f"/compare/?ids={a.pk},{b.pk}")
    rows = {row["key"]: row["values"] for row in response.context["environment_diff"]}
    assert rows["torch"] == ["2.13.0+cpu", "2.14.0"] and rows["packages.torch"] == ["2.13.0", "2.14.0"]
    assert rows["host.hostname"] == ["gpu-box-1", "laptop"]
    assert any(key.startswith("teacher_files") and "config.json" in key for key in rows)
    assert not any("model.safetensors" in key for key in rows) and "executable" not in rows
    assert 'id="environment-diff"' in response.content.decode()


def test_the_worker_stores_the_environment_event_on_the_row(make_experiment):
    from workers.sink import DatabaseSink

    experiment = make_experiment(S.RUNNING)
    DatabaseSink(experiment.pk).emit("environment", env(seed=float("nan")))
    experiment.refresh_from_db()
    assert experiment.environment["host"]["hostname"] == "gpu-box-1" and experiment.environment["seed"] is None


def test_the_api_returns_the_environment_with_the_experiment(api, make_experiment):
    experiment = make_experiment(S.SUCCEEDED, environment=env())
    assert api.get(f"/api/experiments/{experiment.pk}/").json()["environment"]["host"]["gpu_driver"] == "570.86"
