"""A finished dashboard run's stored config.json, re-run through the CLI, gives the same losses and metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.metrics.models import MetricPoint
from workers.tasks import execute

pytestmark = pytest.mark.slow  # re-runs a config through the CLI in a subprocess

S = Experiment.Status


@pytest.fixture
def finished_dashboard_run(transactional_db, make_experiment, tiny_run_config, settings, tmp_path, monkeypatch):
    """A real tiny experiment run through the worker path (teacher cache on) to SUCCEEDED."""
    monkeypatch.delenv("DISTILLERY_FAKE_DISTILLER", raising=False)
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    exp = make_experiment("rerun", config=tiny_run_config(tmp_path / "out", max_steps=20))
    assert queue.claim_next("default", "w1", "token-1") == exp.pk
    execute(exp.pk, "token-1")
    exp.refresh_from_db()
    assert exp.status == S.SUCCEEDED, exp.error
    return exp


def cli_points(metrics_file) -> dict[tuple[str, int], float]:
    """The CLI's --metrics lines keyed like the dashboard's points: ("train/loss", step), ("dev/accuracy", step)."""
    points = {}
    for line in metrics_file.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        prefix = "train" if event["event"] == "step" else event["split"]
        for name, value in event["metrics"].items():
            points[(f"{prefix}/{name}", event["step"])] = value
    return points


def test_the_stored_config_re_run_by_the_cli_reproduces_every_logged_point_and_the_final_metrics(
        finished_dashboard_run, tmp_path):
    exp = finished_dashboard_run
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    # What a user downloads: the page's config.json, and environment.json from the run's export.
    (rerun / "config.json").write_text(json.dumps(exp.config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copy(tmp_path / "out" / "environment.json", rerun / "environment.json")
    done = subprocess.run([sys.executable, "-m", "distill_core", "run", str(rerun / "config.json"),
                           "--output", str(rerun / "out"), "--metrics", str(rerun / "metrics.jsonl"),
                           "--results", str(rerun / "results.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not the recorded environment" not in done.stderr  # same machine, same threads: nothing to warn about

    dashboard = {(key, step): value for key, step, value in
                 MetricPoint.objects.filter(experiment=exp).values_list("key", "step", "value")}
    assert {k for k, _ in dashboard} >= {"train/loss", "train/kd_loss", "train/hard_loss", "dev/accuracy"}
    assert len([k for k in dashboard if k[0] == "train/loss"]) == 20
    assert cli_points(rerun / "metrics.jsonl") == dashboard  # every point, bitwise
    results = json.loads((rerun / "results.json").read_text(encoding="utf-8"))
    for part in ("student", "teacher", "best_dev"):
        assert results[part] == exp.results[part], part
    assert results["environment"]["threads"] == exp.results["environment"]["threads"]
