"""The client, the `distillery` CLI and `--track` against a live server (Django's LiveServerThread, real HTTP).

One run is queued through the CLI and executed by the worker's own code in a thread while `logs -f`
follows it; a local run is streamed with `--track` while its server is stopped and started again.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler

from distill_core.progress import PHASES
from distillery_client import api, cli
from distillery_client.credentials import Credentials
from distillery_client.http import ApiError, Connection
from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint

pytestmark = pytest.mark.slow  # a live server and CLI subprocesses

REPO = Path(__file__).resolve().parents[3]
S = Experiment.Status


class RestartableThread(LiveServerThread):
    """Django's live server thread, allowed to bind the port its previous instance just closed."""

    def _create_server(self, connections_override=None):
        return self.server_class((self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=True,
                                 connections_override=connections_override)


class Server:
    """A live server that can be stopped and started again on the same port (same database)."""

    def __init__(self) -> None:
        self.port = 0
        self.thread: LiveServerThread | None = None

    def start(self) -> None:
        self.thread = RestartableThread("127.0.0.1", _StaticFilesHandler, port=self.port)
        self.thread.daemon = True
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error
        self.port = self.thread.port

    def stop(self) -> None:
        self.thread.terminate()
        self.thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server(transactional_db, settings):
    settings.ALLOWED_HOSTS = ["*"]
    live = Server()
    live.start()
    yield live
    live.stop()


@pytest.fixture
def token(alice) -> str:
    from webapp.api.models import ApiToken

    return ApiToken.issue(alice, "cli")[1]


@pytest.fixture
def logged_in(server, token, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DISTILLERY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("DISTILLERY_URL", raising=False)
    monkeypatch.delenv("DISTILLERY_TOKEN", raising=False)
    assert cli.main(["login", server.url, "--token", token]) == 0
    return tmp_path / "config" / "credentials.json"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("workers.dispatch.wake_workers", lambda pool: None)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def test_login_saves_the_url_and_token_readable_by_the_user_only(logged_in, server, token):
    assert stat.S_IMODE(logged_in.stat().st_mode) == 0o600
    assert json.loads(logged_in.read_text()) == {"url": server.url, "token": token}
    with pytest.raises(ApiError) as refused:
        api.login(server.url, "dst_wrong")
    assert refused.value.status == 401


def test_submit_follow_metrics_download_ls_through_the_cli(logged_in, checkpoint, dataset, tmp_path):
    from webapp.gpuqueue import queue
    from workers.tasks import execute

    body = tmp_path / "run.json"
    body.write_text(json.dumps({"teacher": checkpoint.pk, "dataset": dataset.pk, "epochs": 2, "batch_size": 4,
                                "max_length": 16, "log_every": 1}))
    code, out = run_cli("submit", str(body), "--name", "from the cli", "--priority", "3")
    assert code == 0
    pk = int(out.split("\t")[0])
    assert Experiment.objects.get(pk=pk).priority == 3

    def worker() -> None:
        from django.db import connection

        try:
            assert queue.claim_next("default", "test-worker", "token-1") == pk
            execute(pk, "token-1")
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    followed = io.StringIO()
    final = api.follow(pk, interval=0.2, out=followed)
    thread.join(timeout=300)
    assert final["status"] == "SUCCEEDED", final["error"]
    assert f"experiment {pk} succeeded" in followed.getvalue()
    # a tqdm bar for the phases the 0.2-s polls caught: on an idle machine this tiny run's training can
    # start and end between two polls, so no particular phase is certain to be seen
    assert any(label in followed.getvalue() for label in PHASES.values()), followed.getvalue()

    code, out = run_cli("metrics", str(pk), "--csv")
    rows = out.strip().splitlines()
    stored = MetricPoint.objects.filter(experiment_id=pk).count()
    assert code == 0 and rows[0] == "key,step,value" and len(rows) - 1 == stored > 0

    code, out = run_cli("download-student", str(pk), str(tmp_path / "student"))
    assert code == 0
    folder = tmp_path / "student" / f"experiment-{pk}-student"
    from distill_core.export import predict

    assert predict(folder, ["some text"])[0]["label"] in dataset.labels

    code, out = run_cli("ls", "--status", "succeeded", "--name", "from the cli")
    assert code == 0 and f"{pk}  SUCCEEDED" in out
    code, out = run_cli("status", str(pk), "--json")
    assert json.loads(out)["environment"]["host"]["cpu_count"] == os.cpu_count()


def test_submit_a_pages_config_json_then_cancel_through_the_cli(logged_in, make_experiment, tmp_path):
    original = make_experiment(S.SUCCEEDED)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(original.config))
    code, out = run_cli("submit", str(config), "--name", "again")
    assert code == 0
    queued = Experiment.objects.get(pk=int(out.split("\t")[0]))
    assert queued.name == "again" and queued.teacher == original.teacher and queued.status == S.QUEUED
    code, out = run_cli("cancel", str(queued.pk))
    assert code == 0 and "cancelled" in out
    assert Experiment.objects.get(pk=queued.pk).status == S.CANCELLED
    code, _ = run_cli("cancel", str(queued.pk))
    assert code == 1  # nothing left to cancel: the API's 409, as an error


def tracked_config(experiment, tmp_path, epochs: int) -> dict:
    config = json.loads(json.dumps(experiment.config))
    config["train"].update(epochs=epochs, batch_size=2, log_every=1)
    config["output_dir"] = str(tmp_path / "local-run")
    return config


class Outage:
    """A sink around the tracker that stops the server at one step and starts it again at a later one."""

    def __init__(self, server: Server, stop_at: int, start_at: int):
        self.server, self.stop_at, self.start_at = server, stop_at, start_at
        self.sent: set[tuple[str, int]] = set()
        self.failed_flushes = 0
        self.tracker = None

    def emit(self, kind: str, payload: dict) -> None:
        if kind in ("step", "eval"):
            prefix = "train" if kind == "step" else payload["split"]
            self.sent |= {(f"{prefix}/{name}", payload["step"]) for name in payload["metrics"]}
        if kind == "step" and payload["step"] == self.stop_at:
            self.server.stop()
        if kind == "step" and payload["step"] == self.start_at:
            self.failed_flushes = int(self.tracker.down_since is not None)
            self.server.start()


def test_a_tracked_run_survives_a_server_restart_without_losing_or_duplicating_points(
        server, token, experiment, tmp_path):
    from distill_core.config import ExperimentConfig
    from distill_core.distiller import run
    from distillery_client.track import TrackingSink

    config = tracked_config(experiment, tmp_path, epochs=3)  # 27 steps
    outage = Outage(server, stop_at=5, start_at=20)
    tracker = TrackingSink(Connection(Credentials(server.url, token), timeout=5), "restart", config, inner=outage,
                           flush_seconds=0.0, max_retry_seconds=0.5)
    outage.tracker = tracker
    results = run(ExperimentConfig.from_dict(config), sink=tracker, should_cancel=tracker.should_cancel)
    tracker.close("SUCCEEDED")
    assert outage.failed_flushes == 1, "the server was down while the run trained"
    assert results["steps"] > 20
    row = Experiment.objects.get(pk=tracker.id)
    stored = list(MetricPoint.objects.filter(experiment=row).values_list("key", "step"))
    assert len(stored) == len(set(stored)) and set(stored) == outage.sent
    assert row.status == S.SUCCEEDED and row.tracked and row.results["size"]["compression"] == pytest.approx(results["size"]["compression"])
    assert row.results["student"]["confusion_matrix"] == results["student"]["confusion_matrix"]
    assert row.environment["teacher_files"][config["teacher"]["path"]]["config.json"]


def test_run_track_streams_a_local_run_from_the_command_line(server, token, experiment, tmp_path):
    config_path = tmp_path / "tracked.json"
    config_path.write_text(json.dumps(tracked_config(experiment, tmp_path, epochs=1)))
    metrics = tmp_path / "steps.jsonl"
    env = {**os.environ, "DISTILLERY_URL": server.url, "DISTILLERY_TOKEN": token,
           "DISTILLERY_CONFIG_DIR": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-m", "distill_core", "run", str(config_path), "--track",
                           "--track-name", "my laptop run", "--metrics", str(metrics)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    row = Experiment.objects.get(name="my laptop run")
    assert row.tracked and row.status == S.SUCCEEDED and row.team == experiment.team
    local = {(f"{'train' if e['event'] == 'step' else e['split']}/{name}", e["step"])
             for e in map(json.loads, metrics.read_text().splitlines()) for name in e["metrics"]}
    assert set(MetricPoint.objects.filter(experiment=row).values_list("key", "step")) == local
    assert row.environment["packages"]["torch"].startswith("2.13.0") and row.log_tail
