"""Every phase of a run reports progress (throttled, in order, monotone) and can be cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from distill_core import progress
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import RunCancelled
from distill_core.progress import PHASES, Phases
from tests.distill_core.conftest import ListSink

AUGMENT = {"enabled": True, "n_iter": 1, "max_examples": 100}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_phase_emits_its_start_at_most_one_event_a_second_and_its_end():
    sink, clock = ListSink(), FakeClock()
    with Phases(sink, clock=clock).phase("teacher", total=1000) as p:
        for _ in range(1000):
            clock.now += 0.01  # 10 s in all
            p.advance()
    events = sink.of("phase")
    assert 10 <= len(events) <= 12  # start, ~1 per second, end: not one per example
    assert events[0]["done"] == 0 and not events[0]["finished"]
    assert events[-1]["done"] == 1000 and events[-1]["finished"] and events[-1]["eta_seconds"] is None
    middle = events[5]
    assert middle["rate"] == pytest.approx(100.0) and middle["label"] == "Teacher labelling"
    assert middle["eta_seconds"] == pytest.approx((1000 - middle["done"]) / 100.0, abs=0.1)


def test_an_uncountable_phase_has_no_rate_or_eta():
    sink, clock = ListSink(), FakeClock()
    with Phases(sink, clock=clock).phase("export"):
        clock.now += 3
    end = sink.of("phase")[-1]
    assert end["total"] is None and end["rate"] is None and end["eta_seconds"] is None
    assert end["elapsed_seconds"] == pytest.approx(3.0)


def test_a_resumed_phase_counts_its_rate_from_where_it_resumed():
    sink, clock = ListSink(), FakeClock()
    with Phases(sink, clock=clock, every=0).phase("training", total=100, unit="step") as p:
        p.resume_at(60)
        clock.now += 10
        p.update_to(70)
    assert sink.of("phase")[-2]["rate"] == pytest.approx(1.0)  # 10 steps in 10 s, not 70


def test_phase_events_of_a_tiny_run_arrive_in_order_with_monotone_done(make_config, monkeypatch):
    monkeypatch.setattr(progress, "EVERY", 0.0)  # every advance emits: the test sees the in-between events
    sink = ListSink()
    results = run(ExperimentConfig.from_dict(make_config(augment=AUGMENT)), sink=sink)
    events = sink.of("phase")
    names = [e["name"] for i, e in enumerate(events) if i == 0 or events[i - 1]["name"] != e["name"]]
    assert names == list(PHASES)  # each phase once, in the declared order
    for name in PHASES:
        mine = [e for e in events if e["name"] == name]
        done = [e["done"] for e in mine]
        assert done == sorted(done), name
        assert not mine[0]["finished"] and mine[-1]["finished"] and [e["finished"] for e in mine].count(True) == 1
        if mine[0]["total"] is not None:
            assert done[-1] == mine[0]["total"], name
    by_name = {name: [e for e in events if e["name"] == name] for name in PHASES}
    assert by_name["training"][0]["total"] == results["steps"] == 20 and len(by_name["training"]) > 3  # throttled, not skipped
    assert by_name["teacher"][0]["total"] == results["examples"]["train"] + 60  # train with its copies, and test
    assert any(e["rate"] and e["eta_seconds"] is not None for e in by_name["training"][1:-1])
    assert sink.events.index(("start", sink.of("start")[0])) > sink.events.index(("phase", by_name["training"][0]))


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_cancel_in_any_phase_stops_the_run_in_that_phase(make_config, monkeypatch, phase):
    monkeypatch.setattr(progress, "EVERY", 0.0)
    sink = ListSink()

    def should_cancel() -> bool:  # requested as soon as `phase` has started
        return any(p["name"] == phase for p in sink.of("phase"))

    with pytest.raises(RunCancelled):
        run(ExperimentConfig.from_dict(make_config(augment=AUGMENT)), sink=sink, should_cancel=should_cancel)
    assert not sink.of("result")
    events = sink.of("phase")
    assert events[-1]["name"] == phase and not events[-1]["finished"]  # stopped inside it: no later phase began


def test_a_cancel_stops_the_teacher_pass_within_a_second(make_config, tmp_path):
    lines = (tmp_path / "big.tsv")
    source = make_config()["data"]["train"]
    with open(source, encoding="utf-8") as fh:
        rows = fh.read()
    lines.write_text(rows * 60, encoding="utf-8")  # 12,000 titles: the pass takes several seconds
    config = ExperimentConfig.from_dict(make_config(data={"train": str(lines)}))
    requested, asked = threading.Event(), []

    class Sink(ListSink):
        def emit(self, kind: str, payload: dict) -> None:
            super().emit(kind, payload)
            if kind == "phase" and payload["name"] == "teacher" and not asked:
                asked.append(1)
                threading.Timer(0.5, lambda: (asked.append(time.monotonic()), requested.set())).start()

    sink = Sink()
    with pytest.raises(RunCancelled, match="teacher was labelling"):
        run(config, sink=sink, should_cancel=requested.is_set)
    assert requested.is_set(), "the teacher pass finished before the cancel; make the data larger"
    assert time.monotonic() - asked[1] < 1.0
    teacher = [e for e in sink.of("phase") if e["name"] == "teacher"]
    assert not teacher[-1]["finished"] and teacher[-1]["done"] < teacher[0]["total"]
