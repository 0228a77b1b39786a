"""Issue #18 part 3: the Workers & GPUs page shows the live load of each worker's job from its system/... samples."""

from __future__ import annotations

from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.gpuqueue.models import Worker

S = Experiment.Status


def test_the_page_and_usage_json_show_the_running_jobs_load(alice_client, make_experiment):
    busy = Worker.objects.create(name="w1", host="h", heartbeat_at=timezone.now())
    idle = Worker.objects.create(name="w2", host="h", heartbeat_at=timezone.now())
    make_experiment(S.RUNNING, worker_name="w1", latest={"train/loss": 0.5, "system/cpu_percent": 187.4,
                                                         "system/rss_mb": 2048.0, "system/gpu_util_percent": 91.0,
                                                         "system/gpu_memory_mb": 5120.0})
    html = alice_client.get("/queue/workers/").content.decode()
    assert "CPU 187 % · RAM 2,048 MiB · GPU 91 % · GPU mem 5,120 MiB" in html
    assert 'data-usage-url="/queue/workers/usage.json"' in html and "js/workers.js" in html
    answer = alice_client.get("/queue/workers/usage.json").json()["workers"]
    assert answer[str(busy.pk)]["usage"] == {"cpu_percent": 187.4, "rss_mb": 2048.0, "gpu_util_percent": 91.0,
                                             "gpu_memory_mb": 5120.0}
    assert answer[str(idle.pk)]["usage"] is None and answer[str(idle.pk)]["text"] == ""


def test_usage_json_names_no_experiment_of_another_team(charlie_client, make_experiment):
    Worker.objects.create(name="w1", host="h", heartbeat_at=timezone.now())
    secret = make_experiment(S.RUNNING, name="acme secret plan", worker_name="w1",
                             latest={"system/rss_mb": 100.0})
    body = charlie_client.get("/queue/workers/usage.json").content.decode()
    assert "RAM 100 MiB" in body and secret.name not in body and "experiment" not in body


def test_usage_json_needs_a_login(client):
    assert client.get("/queue/workers/usage.json").status_code == 302
