"""The client's functions, one per CLI command; each takes a Connection (default: the saved login).

    from distillery_client import api
    run = api.submit({"teacher": 1, "dataset": 1, "temperature": 4}, name="T=4")
    api.follow(run["id"])                      # log lines and a progress bar until it ends
    api.download_student(run["id"], "student/")
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from distillery_client import credentials
from distillery_client.http import ApiError, Connection

FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
STEP_WINDOW = 5000  # steps per metrics request: at most one point per step and key, so never downsampled


def login(url: str, token: str) -> dict[str, Any]:
    """Check the token against the server (one authenticated call), then save both; returns the check's answer."""
    connection = Connection(credentials.Credentials(url.rstrip("/"), token))
    answer = connection.call("GET", "/api/experiments/", query={"limit": 1})
    credentials.save(url, token)
    return answer


def _conn(connection: Connection | None) -> Connection:
    return connection or Connection()


def submit(body: dict[str, Any], *, team: int | None = None, name: str | None = None, gpus: int | None = None,
           priority: int | None = None, connection: Connection | None = None) -> dict[str, Any]:
    """Queue an experiment; returns it (or {"sweep", "experiments"} for a sweep).

    `body` holds either the new-experiment form's inputs (ExperimentCreate in /api/schema.json: teacher
    and dataset by id) or a distill_core config (an experiment page's config.json: teacher and data by
    path, matched to the team's registered ones; POST /api/experiments/from-config/). The keyword
    arguments override the body's. `gpus` is sent only to a server whose form has that input.
    """
    conn = _conn(connection)
    overrides = {"team": team, "name": name, "priority": priority}
    if is_distill_config(body):
        if gpus is not None:
            raise ApiError(400, "--gpus applies to form inputs, not to a distill_core config.", {"gpus": ["Unused."]})
        return conn.call("POST", "/api/experiments/from-config/",
                         {"config": body, **{k: v for k, v in overrides.items() if v is not None}})
    if gpus is not None:
        inputs = conn.call("GET", "/api/schema.json")["components"]["schemas"]["ExperimentCreate"]["properties"]
        if "gpus" not in inputs:
            raise ApiError(400, f"{conn.url} does not schedule runs on several GPUs (its experiment form has no "
                                "`gpus` input); leave out --gpus.", {"gpus": ["Not offered by this server."]})
        overrides["gpus"] = gpus
    return conn.call("POST", "/api/experiments/", {**body, **{k: v for k, v in overrides.items() if v is not None}})


def is_distill_config(body: dict[str, Any]) -> bool:
    """Whether `body` is a distill_core config (teacher and data as objects) rather than form inputs."""
    return isinstance(body.get("teacher"), dict) or isinstance(body.get("data"), dict)


def status(experiment_id: int, connection: Connection | None = None) -> dict[str, Any]:
    """One experiment with its status, phase, progress, latest and best metrics, config and environment."""
    return _conn(connection).call("GET", f"/api/experiments/{int(experiment_id)}/")


def cancel(experiment_id: int, connection: Connection | None = None) -> dict[str, Any]:
    """Cancel a queued run, or ask a running one to stop: {"outcome", "experiment"}."""
    return _conn(connection).call("POST", f"/api/experiments/{int(experiment_id)}/cancel/")


def ls(*, status: str | None = None, team: str | None = None, name: str | None = None, owner: str | None = None,
       tag: str | None = None, tracked: bool | None = None, limit: int = 50,
       connection: Connection | None = None) -> list[dict[str, Any]]:
    """Your teams' experiments, newest first, filtered; at most `limit` (pages through the API's pages of 200)."""
    conn, rows, offset = _conn(connection), [], 0
    query = {"status": status, "team": team, "name": name, "owner": owner, "tag": tag,
             "tracked": None if tracked is None else str(tracked).lower()}
    while len(rows) < limit:
        page = conn.call("GET", "/api/experiments/", query={**query, "limit": min(200, limit - len(rows)),
                                                            "offset": offset})
        rows.extend(page["results"])
        if page["next_offset"] is None:
            break
        offset = page["next_offset"]
    return rows


# The worker's system series (workers/sysmetrics.py KEYS), keyed by seconds since the start, not steps: the API
# sends them only when asked for by name.
SYSTEM_KEYS = ("system/cpu_percent", "system/rss_mb", "system/gpu_util_percent", "system/gpu_memory_mb", "system/step")


def metrics(experiment_id: int, keys: list[str] | None = None,
            connection: Connection | None = None) -> dict[str, list[tuple[int, float | None]]]:
    """Every stored point of every (or each given) series, not downsampled: {key: [(step, value), ...]}
    (for a system/... series, (second, value))."""
    if keys is None:
        conn = _conn(connection)
        return {**_metrics(experiment_id, None, conn), **_metrics(experiment_id, list(SYSTEM_KEYS), conn)}
    return _metrics(experiment_id, keys, connection)


def _metrics(experiment_id: int, keys: list[str] | None,
             connection: Connection | None) -> dict[str, list[tuple[int, float | None]]]:
    conn, path = _conn(connection), f"/api/experiments/{int(experiment_id)}/metrics/"
    overview = conn.call("GET", path, query={"points": 10, "key": keys})
    last = max((s["steps"][-1] for s in overview["series"].values() if s["steps"]), default=-1)
    series: dict[str, list[tuple[int, float | None]]] = {}
    for lo in range(0, last + 1, STEP_WINDOW):
        window = conn.call("GET", path, query={"from": lo, "to": lo + STEP_WINDOW - 1, "points": STEP_WINDOW,
                                               "key": keys})
        assert not window["downsampled"], "a window of STEP_WINDOW steps holds at most STEP_WINDOW points a series"
        for key, data in window["series"].items():
            series.setdefault(key, []).extend(zip(data["steps"], data["values"], strict=True))
    return series


def metrics_csv(experiment_id: int, out: IO[str], keys: list[str] | None = None,
                connection: Connection | None = None) -> int:
    """Write the points as CSV rows `key,step,value` (sorted by key, then step); returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(["key", "step", "value"])
    rows = 0
    for key, points in sorted(metrics(experiment_id, keys, connection).items()):
        for step, value in points:
            writer.writerow([key, step, "" if value is None else repr(value)])
            rows += 1
    return rows


def download_student(experiment_id: int, directory: str | Path, connection: Connection | None = None) -> Path:
    """Download a finished run's exported student and unpack it into `directory`; returns the student's folder."""
    conn, target = _conn(connection), Path(directory)
    with tempfile.TemporaryFile() as fh:
        conn.download(f"/api/experiments/{int(experiment_id)}/student.zip", fh)
        fh.seek(0)
        with zipfile.ZipFile(fh) as archive:
            root = target.resolve()
            for member in archive.infolist():  # refuse names that would land outside `directory`
                if not (root / member.filename).resolve().is_relative_to(root):
                    raise ValueError(f"Refusing the archive member {member.filename!r}: it points outside {root}")
            target.mkdir(parents=True, exist_ok=True)
            archive.extractall(target)
            tops = {Path(name).parts[0] for name in archive.namelist() if name}
    return target / tops.pop() if len(tops) == 1 else target


def new_log_lines(previous: list[str], tail: list[str]) -> list[str]:
    """The lines of `tail` (a run's last lines now) not in `previous` (its last lines before)."""
    if not previous:
        return tail
    for overlap in range(min(len(previous), len(tail)), 0, -1):  # the longest end of `previous` that starts `tail`
        if previous[-overlap:] == tail[:overlap]:
            return tail[overlap:]
    return tail


def watch(experiment_id: int, interval: float = 2.0, connection: Connection | None = None,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """Yield the experiment every `interval` seconds until it has finished (the last one included)."""
    conn = _conn(connection)
    while True:
        experiment = status(experiment_id, conn)
        yield experiment
        if experiment["status"] in FINISHED:
            return
        sleep(interval)


def follow(experiment_id: int, interval: float = 2.0, out: IO[str] | None = None, bar: bool = True,
           connection: Connection | None = None) -> dict[str, Any]:
    """Print the run's new log lines and a tqdm bar of its phase until it ends; returns the final experiment."""
    import sys

    from tqdm import tqdm

    out = out or sys.stdout
    lines: list[str] = []
    progress, phase_name, experiment = None, None, {}
    for experiment in watch(experiment_id, interval, connection):
        tail = experiment.get("log_tail", "").splitlines()
        for line in new_log_lines(lines, tail):
            (progress.write if progress is not None else print)(line, file=out)
        lines = tail
        phase = experiment.get("phase")
        if bar and phase:
            if phase["name"] != phase_name:
                if progress is not None:
                    progress.close()
                phase_name = phase["name"]
                progress = tqdm(total=phase.get("total"), unit=phase.get("unit") or "it", desc=phase.get("label"),
                                file=out, dynamic_ncols=True)
            progress.update(max(0, (phase.get("done") or 0) - progress.n))
    if progress is not None:
        progress.close()
    print(f"experiment {experiment_id} {experiment['status'].lower()}"
          + (f": {experiment['error']}" if experiment.get("error") else ""), file=out)
    return experiment


def render_table(rows: list[dict[str, Any]]) -> str:
    """`ls` output: id, status, progress, team, name, best dev accuracy."""
    out = io.StringIO()
    out.write(f"{'id':>6}  {'status':<11} {'done':>5}  {'team':<14} {'dev acc':>7}  name\n")
    for row in rows:
        acc = (row.get("best") or {}).get("dev/accuracy")
        done = f"{100 * (row.get('progress') or 0):.0f}%"
        out.write(f"{row['id']:>6}  {row['status']:<11} {done:>5}  {row['team']['name'][:14]:<14} "
                  f"{'' if acc is None else f'{acc:.4f}':>7}  {row['name']}{'  (tracked)' if row.get('tracked') else ''}\n")
    return out.getvalue()
