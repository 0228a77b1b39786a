"""An uploaded checkpoint's page follows the unpacking task: the bar moves, then the details appear."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in, screenshot
from webapp.accounts.models import Membership, Team
from webapp.registry.models import Checkpoint

pytestmark = [pytest.mark.browser]


@pytest.fixture
def unpacking(transactional_db) -> Checkpoint:
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice)
    return Checkpoint.objects.create(team=team, name="uploaded", path="/nowhere/uploaded-0", created_by=alice,
                                     status=Checkpoint.Status.UNPACKING, bytes_total=4_000_000, bytes_done=1_000_000)


def test_the_page_shows_progress_then_the_checkpoint(unpacking, live_server, page):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/checkpoints/{unpacking.pk}/")
    assert page.inner_text("#unpack-percent") == "25 %" and page.locator("text=Distil it").count() == 0

    Checkpoint.objects.filter(pk=unpacking.pk).update(bytes_done=4_000_000)
    page.wait_for_function("() => document.getElementById('unpack-percent').textContent === '100 %'", timeout=10_000)
    assert page.inner_text("#unpack-phase") == "checking the checkpoint…"
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
    page.wait_for_timeout(700)  # the bar eases to its width
    screenshot(page, "checkpoint-unpacking")

    Checkpoint.objects.filter(pk=unpacking.pk).update(
        status=Checkpoint.Status.READY, info={"model_type": "bert", "num_labels": 3, "num_layers": 2})
    page.wait_for_selector("text=Distil it", timeout=10_000)
    assert page.locator("#unpacking").count() == 0 and "bert" in page.inner_text("main")
    screenshot(page, "checkpoint-ready")
    assert page.js_errors == []


def test_a_failed_upload_shows_its_reason(unpacking, live_server, page):
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/checkpoints/{unpacking.pk}/")
    Checkpoint.objects.filter(pk=unpacking.pk).update(status=Checkpoint.Status.FAILED,
                                                      error="config.json sets num_hidden_layers to 9,000.")
    page.wait_for_selector("text=The upload could not be used", timeout=10_000)
    assert "num_hidden_layers to 9,000" in page.inner_text(".error-box")
    assert page.js_errors == []
