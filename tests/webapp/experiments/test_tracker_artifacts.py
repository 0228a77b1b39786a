"""Issue #18 part 5: the artifacts tab, file and full-log downloads, series as CSV, /compare/ without ids,
live.json for the list and queue pages, and the chart controls on the experiment page."""

from __future__ import annotations

import csv
import io

from tests.webapp.factories import add_points
from webapp.experiments import run_files
from webapp.experiments.models import Experiment

S = Experiment.Status


def _write_run(settings, experiment) -> dict:
    """Files as a worker leaves them: the export, a checkpoint, the full log naming a teacher cache entry."""
    base = run_files.run_dir(experiment)
    (base / "student").mkdir(parents=True)
    (base / "student" / "model.safetensors").write_bytes(b"\x01" * 1000)
    (base / "student" / "checkpoint.pt").write_bytes(b"\x02" * 10)
    entry = settings.ARTIFACT_ROOT / "teacher-cache" / ("ab" * 16)
    entry.mkdir(parents=True)
    (entry / "logits.npy").write_bytes(b"\x03" * 64)
    (entry / "meta.json").write_text('{"version": 1}')
    unused = settings.ARTIFACT_ROOT / "teacher-cache" / ("cd" * 16)
    unused.mkdir()
    (unused / "logits.npy").write_bytes(b"other run")
    (base / "run.log").write_text(f"10:00:00 INFO distill_core.teacher_cache: Teacher cache miss {entry}: running the "
                                  f"teacher\n10:00:05 INFO distill_core: epoch 1 done\n")
    return {"entry": entry, "base": base}


def test_the_artifacts_tab_lists_every_file_with_sizes(alice_client, experiment, settings):
    _write_run(settings, experiment)
    response = alice_client.get(f"/experiments/{experiment.pk}/artifacts/")
    assert response.status_code == 200
    files = {f.path: f for f in response.context["files"]}
    assert set(files) == {"run/student/model.safetensors", "run/student/checkpoint.pt", "run/run.log",
                          f"teacher-cache/{'ab' * 16}/logits.npy", f"teacher-cache/{'ab' * 16}/meta.json"}
    assert files["run/student/model.safetensors"].size == 1000
    assert files["run/student/checkpoint.pt"].kind == "checkpoint"
    assert files["run/run.log"].kind == "log"
    assert files[f"teacher-cache/{'ab' * 16}/logits.npy"].kind == "teacher cache"
    assert response.context["total"] == sum(f.size for f in files.values())
    html = response.content.decode()
    assert f"/experiments/{experiment.pk}/artifacts/run/student/model.safetensors" in html
    assert f"/experiments/{experiment.pk}/config.json" in html


def test_each_listed_file_downloads_as_an_attachment(alice_client, experiment, settings):
    _write_run(settings, experiment)
    response = alice_client.get(f"/experiments/{experiment.pk}/artifacts/run/student/model.safetensors")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x01" * 1000
    assert response["Content-Type"] == "application/octet-stream"
    assert 'attachment; filename="model.safetensors"' in response["Content-Disposition"]
    cached = alice_client.get(f"/experiments/{experiment.pk}/artifacts/teacher-cache/{'ab' * 16}/logits.npy")
    assert b"".join(cached.streaming_content) == b"\x03" * 64


def test_paths_outside_the_run_are_refused(alice_client, experiment, settings, tmp_path):
    paths = _write_run(settings, experiment)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    (paths["base"] / "leak.txt").symlink_to(secret)
    for path in ["run/../../secret.txt", "run/leak.txt", f"teacher-cache/{'cd' * 16}/logits.npy",  # not this run's
                 "other/x", "run/", "run/student", "teacher-cache/../experiments/1/run.log"]:
        assert alice_client.get(f"/experiments/{experiment.pk}/artifacts/{path}").status_code == 404, path
    names = [f.path for f in run_files.list_files(experiment)]
    assert "run/leak.txt" not in names and not any("cd" * 16 in n for n in names)


def test_another_team_gets_404_for_every_tracker_endpoint(charlie_client, experiment, settings):
    _write_run(settings, experiment)
    add_points(experiment, "train/loss", {1: 1.0})
    for url in ["artifacts/", "artifacts/run/student/model.safetensors", "run.log", "metrics.csv?key=train/loss"]:
        assert charlie_client.get(f"/experiments/{experiment.pk}/{url}").status_code == 404, url
    answer = charlie_client.get(f"/experiments/live.json?ids={experiment.pk}").json()
    assert answer == {"experiments": {}, "newest": None}


def test_the_full_log_downloads(alice_client, experiment, settings):
    _write_run(settings, experiment)
    response = alice_client.get(f"/experiments/{experiment.pk}/run.log")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert "Teacher cache miss" in text and "epoch 1 done" in text
    assert f'filename="experiment-{experiment.pk}.log"' in response["Content-Disposition"]


def test_without_a_full_log_the_stored_tail_is_served(alice_client, make_experiment):
    experiment = make_experiment(S.FAILED, log_tail="line one\nline two")
    response = alice_client.get(f"/experiments/{experiment.pk}/run.log")
    assert b"".join(response.streaming_content) == b"line one\nline two\n"
    assert alice_client.get(f"/experiments/{make_experiment().pk}/run.log").status_code == 404


def test_a_series_downloads_as_csv_with_every_point(alice_client, experiment, monkeypatch):
    monkeypatch.setattr("webapp.experiments.views_tracker.CSV_CHUNK", 7)  # several keyset pages
    add_points(experiment, "train/loss", {step: 1.0 / step for step in range(1, 31)})
    add_points(experiment, "dev/accuracy", {10: 0.5})
    response = alice_client.get(f"/experiments/{experiment.pk}/metrics.csv", {"key": "train/loss"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'experiment-{experiment.pk}-train-loss.csv' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["step", "train/loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 31))
    assert [float(r[1]) for r in rows[1:]] == [1.0 / step for step in range(1, 31)]
    assert alice_client.get(f"/experiments/{experiment.pk}/metrics.csv", {"key": "nope"}).status_code == 404
    assert alice_client.get(f"/experiments/{experiment.pk}/metrics.csv").status_code == 400


def test_compare_without_ids_shows_a_chooser_of_the_teams_runs(alice_client, make_experiment):
    mine = [make_experiment(name=f"run {i}") for i in range(3)]
    response = alice_client.get("/compare/")
    assert response.status_code == 200
    assert [e.pk for e in response.context["choices"]] == [e.pk for e in reversed(mine)]
    html = response.content.decode()
    assert 'id="compare-chooser"' in html and f'value="{mine[0].pk}"' in html
    assert alice_client.get("/compare/?ids=1").status_code == 400  # too few ids is still an error


def test_the_chooser_offers_no_other_teams_runs(charlie_client, make_experiment):
    make_experiment()
    response = charlie_client.get("/compare/")
    assert response.status_code == 200 and list(response.context["choices"]) == []


def test_live_json_reports_the_asked_rows_and_the_newest(alice_client, make_experiment):
    running = make_experiment(S.RUNNING, progress=0.25, current_step=5, total_steps=20)
    queued = make_experiment()
    answer = alice_client.get(f"/experiments/live.json?ids={running.pk},{queued.pk}").json()
    assert answer["newest"] == queued.pk
    assert answer["experiments"][str(running.pk)] == {
        "status": "RUNNING", "status_label": "Running", "progress": 0.25, "current_step": 5, "total_steps": 20,
        "cancel_requested": False, "active": True}
    assert answer["experiments"][str(queued.pk)]["status"] == "QUEUED"
    assert alice_client.get("/experiments/live.json?ids=x").status_code == 400


def test_list_and_queue_pages_poll_live_json(alice_client, make_experiment):
    make_experiment(S.RUNNING)
    for url in ["/", "/queue/"]:
        html = alice_client.get(url).content.decode()
        assert 'data-live-url="/experiments/live.json"' in html and "data-live-region" in html, url
        assert "js/live.js" in html, url


def test_the_page_has_chart_controls_and_system_charts(alice_client, experiment):
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert html.count('data-control="smooth"') == html.count('class="chart-controls') >= 6
    assert 'data-control="log"' in html and 'data-control="time"' in html
    assert f"/experiments/{experiment.pk}/metrics.csv?key=train%2Floss" in html
    assert 'id="chart-sys-util"' in html and 'id="chart-sys-memory"' in html
    assert f"/experiments/{experiment.pk}/artifacts/" in html


def test_system_series_are_only_sent_when_named(alice_client, experiment):
    add_points(experiment, "train/loss", {1: 1.0, 2: 0.5})
    add_points(experiment, "system/cpu_percent", {0: 10.0, 3: 90.0, 600: 50.0})
    plain = alice_client.get(f"/experiments/{experiment.pk}/metrics.json").json()
    assert set(plain["series"]) == {"train/loss"} and plain["cursor"] == 2
    named = alice_client.get(f"/experiments/{experiment.pk}/metrics.json?key=system/cpu_percent").json()
    assert named["series"]["system/cpu_percent"]["steps"] == [0, 3, 600]
