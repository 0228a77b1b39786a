"""A running experiment's page follows the run from phase to phase while it polls status.json."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.e2e.conftest import log_in, screenshot
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset
from workers.sink import DatabaseSink

pytestmark = [pytest.mark.browser]


@pytest.fixture
def running(transactional_db):
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice)
    teacher = Checkpoint.objects.create(team=team, name="bert", path="/nowhere", info={"num_labels": 2})
    data = Dataset.objects.create(team=team, name="news", train_path="/nowhere", labels=["a", "b"])
    return Experiment.objects.create(team=team, owner=alice, name="big run", teacher=teacher, dataset=data,
                                     student_type="textcnn", config={}, status=Experiment.Status.RUNNING,
                                     started_at=timezone.now())


def phase(name: str, label: str, done: int, total: int, unit: str = "example") -> dict:
    return {"name": name, "label": label, "index": 0, "done": done, "total": total, "unit": unit, "rate": 40.0,
            "eta_seconds": (total - done) / 40.0, "elapsed_seconds": done / 40.0, "finished": False}


def test_the_page_shows_the_phase_label_change_as_the_run_moves_on(running, live_server, page):
    sink = DatabaseSink(running.pk, flush_seconds=0)  # what the worker writes through; every event stored
    sink.emit("phase", phase("teacher", "Teacher labelling", 0, 12000))
    log_in(page, live_server.url, "alice", "alice-pw-123")
    page.goto(f"{live_server.url}/experiments/{running.pk}/")
    label = page.locator("#phase-label")
    assert label.text_content() == "Teacher labelling 0 / 12,000 examples"

    sink.emit("phase", phase("teacher", "Teacher labelling", 6000, 12000))
    page.wait_for_function("() => document.getElementById('phase-label').textContent.includes('6,000')", timeout=10_000)
    assert page.locator("#phase-fill").get_attribute("style") == "width: 50%;"
    page.wait_for_function("() => !document.getElementById('phase-eta-wrap').hidden", timeout=5_000)

    sink.emit("phase", phase("training", "Training", 3, 40, unit="step"))
    page.wait_for_function("() => document.getElementById('phase-label').textContent.startsWith('Training')",
                           timeout=10_000)
    assert label.text_content() == "Training 3 / 40 steps"
    screenshot(page, "e2e-phase-training")
    assert page.js_errors == []
