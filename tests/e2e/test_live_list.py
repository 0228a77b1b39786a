"""Issue #18 part 5 in a browser: the experiments list updates a run's status and progress without a reload,
and re-reads its rows when a new experiment appears."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

pytestmark = [pytest.mark.browser]
S = Experiment.Status


@pytest.fixture
def make_run(transactional_db):
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice)
    teacher = Checkpoint.objects.create(team=team, name="bert", path="/nowhere", info={"num_labels": 2})
    data = Dataset.objects.create(team=team, name="news", train_path="/nowhere", labels=["a", "b"])

    def make(name: str, **fields) -> Experiment:
        return Experiment.objects.create(team=team, owner=alice, name=name, teacher=teacher, dataset=data,
                                         student_type="textcnn", config={}, **fields)

    return make


def test_the_list_follows_runs_without_a_reload(make_run, live_server, page):
    run = make_run("live run", status=S.RUNNING, progress=0.1, current_step=1, total_steps=10)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    row = f'tr[data-experiment="{run.pk}"]'
    assert page.inner_text(f"{row} .badge") == "Running"

    Experiment.objects.filter(pk=run.pk).update(progress=0.6, current_step=6)
    page.wait_for_function(f"() => document.querySelector('{row} .progress').getAttribute('aria-valuenow') === '60.0'",
                           timeout=15_000)
    Experiment.objects.filter(pk=run.pk).update(status=S.SUCCEEDED, progress=1.0)
    page.wait_for_function(f"() => document.querySelector('{row} .badge').textContent.trim() === 'Succeeded'",
                           timeout=15_000)
    newer = make_run("newer run")
    page.wait_for_selector(f'tr[data-experiment="{newer.pk}"]', timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.js_errors == []
