"""TrackingSink without a server: bounded buffer, back-off while down, one send of everything when back."""

from __future__ import annotations

import os
import stat

import pytest

from distillery_client import credentials
from distillery_client.api import new_log_lines
from distillery_client.http import ApiError, Unreachable
from distillery_client.track import TrackingSink


class FakeServer:
    """Stands in for Connection: stores points like the API (a set keyed on key and step), or is down."""

    url = "http://dashboard"

    def __init__(self) -> None:
        self.down = False
        self.points: dict[tuple[str, int], float] = {}
        self.calls = 0
        self.finished: dict | None = None
        self.cancel = False

    def call(self, method: str, path: str, body=None, query=None):
        self.calls += 1
        if self.down:
            raise Unreachable("connection refused")
        if path == "/api/tracked/":
            return {"id": 7, "url": "/experiments/7/"}
        if path.endswith("/ingest/"):
            for key, step, value in body["points"]:
                self.points.setdefault((key, step), value)
            return {"id": 7, "accepted": len(body["points"]), "status": "RUNNING", "cancel_requested": self.cancel}
        if path.endswith("/finish/"):
            self.finished = body
            return {"id": 7, "status": body["status"]}
        raise AssertionError(path)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def step(sink: TrackingSink, clock: Clock, n: int) -> None:
    clock.now += 1.0
    sink.emit("step", {"step": n, "epoch": 0, "metrics": {"loss": 1.0 / n, "lr": 0.1}})


def make(server, clock, **kw) -> TrackingSink:
    return TrackingSink(server, "run", {"name": "run"}, flush_seconds=1.0, clock=clock, sleep=clock.sleep, **kw)


def test_points_wait_while_the_server_is_down_and_arrive_once_when_it_returns():
    server, clock = FakeServer(), Clock()
    sink = make(server, clock, max_retry_seconds=8.0)
    for n in range(1, 6):
        step(sink, clock, n)
    server.down = True
    calls_before = server.calls
    for n in range(6, 40):
        step(sink, clock, n)
    assert sink.down_since is not None and len(sink.points) == 2 * 34
    assert server.calls - calls_before < 15, "retries back off instead of one per step"
    server.down = False
    clock.now += 10
    step(sink, clock, 40)
    assert sink.down_since is None and not sink.points
    assert set(server.points) == {(f"train/{k}", n) for n in range(1, 41) for k in ("loss", "lr")}
    sink.close("SUCCEEDED")
    assert server.finished["status"] == "SUCCEEDED"


def test_the_buffer_is_bounded_and_drops_the_oldest_training_points_first():
    server, clock = FakeServer(), Clock()
    sink = make(server, clock, max_points=10)
    server.down = True
    sink.emit("eval", {"step": 1, "split": "dev", "metrics": {"accuracy": 0.5}})
    for n in range(1, 20):
        step(sink, clock, n)
    assert len(sink.points) == 10 and ("dev/accuracy", 1) in sink.points
    assert sink.dropped == 2 * 19 + 1 - 10
    assert ("train/loss", 19) in sink.points and ("train/loss", 1) not in sink.points


def test_a_cancel_on_the_dashboard_reaches_should_cancel():
    server, clock = FakeServer(), Clock()
    sink = make(server, clock)
    assert not sink.should_cancel()
    server.cancel = True
    clock.now += 2
    assert sink.should_cancel()


def test_close_gives_up_after_final_wait_when_the_server_never_returns():
    server, clock = FakeServer(), Clock()
    sink = make(server, clock, final_wait=60.0)
    step(sink, clock, 1)
    server.down = True
    step(sink, clock, 2)
    assert sink.close("SUCCEEDED") is None and clock.now >= 60 and server.finished is None


def test_a_refused_token_fails_at_once():
    class Refusing(FakeServer):
        def call(self, method, path, body=None, query=None):
            raise ApiError(401, "Authentication required")

    with pytest.raises(ApiError):
        make(Refusing(), Clock())


def test_credentials_file_is_0600_even_over_a_wider_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLERY_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("DISTILLERY_URL", raising=False)
    monkeypatch.delenv("DISTILLERY_TOKEN", raising=False)
    (tmp_path / credentials.FILENAME).write_text("{}")
    os.chmod(tmp_path / credentials.FILENAME, 0o644)
    path = credentials.save("http://h:8000/", "dst_x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load() == credentials.Credentials("http://h:8000", "dst_x")
    monkeypatch.setenv("DISTILLERY_TOKEN", "dst_env")
    assert credentials.load().token == "dst_env"


def test_not_logged_in_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLERY_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("DISTILLERY_URL", raising=False)
    monkeypatch.delenv("DISTILLERY_TOKEN", raising=False)
    with pytest.raises(credentials.NotLoggedIn, match="distillery login"):
        credentials.load()


def test_new_log_lines_are_the_ones_after_the_overlap():
    assert new_log_lines([], ["a", "b"]) == ["a", "b"]
    assert new_log_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_log_lines(["a", "b"], ["a", "b"]) == []
    assert new_log_lines(["x"], ["y", "z"]) == ["y", "z"]


def test_a_refused_batch_is_dropped_and_a_revoked_token_stops_tracking_but_never_the_training():
    class Picky(FakeServer):
        refuse: int | None = None

        def call(self, method, path, body=None, query=None):
            if path.endswith("/ingest/") and self.refuse:
                raise ApiError(self.refuse, "refused")
            return super().call(method, path, body, query)

    server, clock = Picky(), Clock()
    sink = make(server, clock)
    server.refuse = 400
    step(sink, clock, 1)
    assert not sink.points and sink.dropped == 2 and not sink.ended
    server.refuse = 401
    step(sink, clock, 2)
    assert sink.ended and not sink.should_cancel()
    step(sink, clock, 3)  # no exception: the run trains on
    assert sink.close("SUCCEEDED") is None


def test_submit_sends_a_distill_core_config_to_from_config_and_form_inputs_to_experiments():
    from distillery_client import api

    class Recorder:
        url = "http://dashboard"

        def __init__(self) -> None:
            self.sent: list[tuple[str, dict]] = []

        def call(self, method, path, body=None, query=None):
            self.sent.append((path, body))
            return {"id": 1}

    conn = Recorder()
    api.submit({"teacher": {"path": "/t"}, "data": {"train": "x.tsv"}}, name="again", connection=conn)
    api.submit({"teacher": 1, "dataset": 2}, priority=3, connection=conn)
    assert conn.sent == [("/api/experiments/from-config/", {"config": {"teacher": {"path": "/t"},
                                                                      "data": {"train": "x.tsv"}}, "name": "again"}),
                         ("/api/experiments/", {"teacher": 1, "dataset": 2, "priority": 3})]


def test_the_client_asks_for_every_system_series_the_worker_samples():
    from distillery_client import api
    from workers import sysmetrics

    assert api.SYSTEM_KEYS == sysmetrics.KEYS
