"""Issue #18 part 5 in a browser: the smoothing slider, log-scale and relative-time toggles of a live chart,
and the system chart drawn from system/... series."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in
from tests.webapp.factories import add_points
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

pytestmark = [pytest.mark.browser]


@pytest.fixture
def finished_run(transactional_db):
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice)
    teacher = Checkpoint.objects.create(team=team, name="bert", path="/nowhere", info={"num_labels": 2})
    data = Dataset.objects.create(team=team, name="news", train_path="/nowhere", labels=["a", "b"])
    experiment = Experiment.objects.create(team=team, owner=alice, name="run", teacher=teacher, dataset=data,
                                           student_type="textcnn", config={}, status=Experiment.Status.SUCCEEDED)
    add_points(experiment, "train/loss", {step: (2.0 if step % 2 else 1.0) for step in range(100)})
    add_points(experiment, "system/step", {0: 0.0, 10: 100.0})  # 10 steps a second
    add_points(experiment, "system/cpu_percent", {0: 50.0, 5: 150.0, 10: 100.0})
    return experiment


def loss(page, axis: str) -> list[float]:
    return page.evaluate(f"document.getElementById('chart-loss').data[0].{axis}")


def test_smoothing_log_scale_and_relative_time(finished_run, live_server, page):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/experiments/{finished_run.pk}/")
    page.wait_for_function("() => (document.getElementById('chart-loss').data || [{x: []}])[0].x.length === 100")
    assert loss(page, "y")[:4] == [1.0, 2.0, 1.0, 2.0]

    box = '.chart-controls[data-for="chart-loss"]'
    page.evaluate("(sel) => { const s = document.querySelector(sel); s.value = '0.9'; "
                  "s.dispatchEvent(new Event('input')); }", f"{box} [data-control=smooth]")
    smoothed = loss(page, "y")
    assert smoothed[0] == pytest.approx(1.0) and all(1.3 < v < 1.7 for v in smoothed[60:])  # the zigzag evened out
    assert page.inner_text(f"{box} [data-smooth-value]") == "0.90"

    page.check(f"{box} [data-control=log]")
    assert page.evaluate("document.getElementById('chart-loss').layout.yaxis.type") == "log"
    page.uncheck(f"{box} [data-control=log]")
    assert page.evaluate("document.getElementById('chart-loss').layout.yaxis.type") == "linear"

    page.check(f"{box} [data-control=time]")
    x = loss(page, "x")
    assert x[0] == 0 and x[50] == pytest.approx(5.0) and x[99] == pytest.approx(9.9)
    assert page.evaluate("document.getElementById('chart-loss').layout.xaxis.title.text") == "seconds since start"
    page.uncheck(f"{box} [data-control=time]")
    page.wait_for_function("() => document.getElementById('chart-loss').data[0].x[99] === 99")

    page.wait_for_function("() => (document.getElementById('chart-sys-util').data || [{x: []}])[0].x.length === 3")
    assert page.evaluate("document.getElementById('chart-sys-util').data[0].y") == [50.0, 150.0, 100.0]
    href = page.get_attribute(f"{box} .csv-links a", "href")
    assert href == f"/experiments/{finished_run.pk}/metrics.csv?key=train%2Floss"
    assert page.js_errors == []


def test_compare_curves_have_smoothing_and_log_scale(finished_run, live_server, page):
    other = Experiment.objects.create(team=finished_run.team, owner=finished_run.owner, name="other",
                                      teacher=finished_run.teacher, dataset=finished_run.dataset,
                                      student_type="textcnn", config={}, status=Experiment.Status.SUCCEEDED)
    add_points(other, "train/loss", {step: 3.0 for step in range(50)})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/compare/?ids={finished_run.pk},{other.pk}")
    page.wait_for_function("() => (document.getElementById('compare-loss').data || []).length === 2")
    assert page.evaluate("document.getElementById('compare-loss').data[0].y.slice(0, 2)") == [1.0, 2.0]
    box = '.chart-controls[data-for="compare-loss"]'
    page.evaluate("(sel) => { const s = document.querySelector(sel); s.value = '0.9'; "
                  "s.dispatchEvent(new Event('input')); }", f"{box} [data-control=smooth]")
    tail = page.evaluate("document.getElementById('compare-loss').data[0].y.slice(60)")
    assert all(1.3 < v < 1.7 for v in tail)
    page.check(f"{box} [data-control=log]")
    assert page.evaluate("document.getElementById('compare-loss').layout.yaxis.type") == "log"
    page.evaluate("(sel) => { const s = document.querySelector(sel); s.value = '0'; "
                  "s.dispatchEvent(new Event('input')); }", f"{box} [data-control=smooth]")
    assert page.evaluate("document.getElementById('compare-loss').layout.yaxis.type") == "log"  # kept on redraw
    assert page.js_errors == []
