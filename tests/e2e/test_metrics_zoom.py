"""Zooming a live chart re-queries the visible step range; a double-click reset re-queries all of it."""

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
def long_run(transactional_db):
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice)
    teacher = Checkpoint.objects.create(team=team, name="bert", path="/nowhere", info={"num_labels": 2})
    data = Dataset.objects.create(team=team, name="news", train_path="/nowhere", labels=["a", "b"])
    experiment = Experiment.objects.create(team=team, owner=alice, name="long run", teacher=teacher, dataset=data,
                                           student_type="textcnn", config={}, status=Experiment.Status.SUCCEEDED)
    add_points(experiment, "train/loss", {step: 1.0 / (1 + step) + (step % 7) * 0.01 for step in range(20_000)})
    return experiment


def trace_x(page) -> list[int]:
    return page.evaluate("document.getElementById('chart-loss').data[0].x")


def test_zooming_requeries_the_range_and_reset_restores_the_overview(long_run, live_server, page):
    log_in(page, live_server.url, "alice", "alice-pw-123")
    page.goto(f"{live_server.url}/experiments/{long_run.pk}/")
    page.wait_for_function("() => (document.getElementById('chart-loss').data || [{x: []}])[0].x.length > 0")
    overview = trace_x(page)
    assert len(overview) <= 1000 and overview[0] == 0 and overview[-1] == 19_999

    page.evaluate("Plotly.relayout('chart-loss', {'xaxis.range[0]': 5000, 'xaxis.range[1]': 5100})")
    page.wait_for_function("() => document.getElementById('chart-loss').data[0].x[0] >= 5000")
    assert trace_x(page) == list(range(5000, 5101))  # every point of the zoomed range

    page.evaluate("Plotly.relayout('chart-loss', {'xaxis.autorange': true, 'yaxis.autorange': true})")
    page.wait_for_function("() => document.getElementById('chart-loss').data[0].x[0] === 0")
    assert trace_x(page) == overview
    assert page.js_errors == []
