"""The foundation slice in a real browser with a real worker process.

Log in → upload a dataset → register a checkpoint → create an experiment → watch it finish
→ the confusion matrices and the size chart carry the run's data. Screenshots are kept in
test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import demo_labels, wait_for, write_demo_slice
from tests.e2e.conftest import log_in, plot_data, screenshot
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint

pytestmark = [pytest.mark.worker, pytest.mark.browser]


@pytest.fixture
def acme(transactional_db, tmp_path, settings):
    settings.CHECKPOINT_ROOTS = [tmp_path / "teachers"]
    settings.DATASET_ROOT = tmp_path / "datasets"
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    User = get_user_model()
    alice = User.objects.create_user("alice", password="alice-pw-123")
    charlie = User.objects.create_user("charlie", password="charlie-pw-123")
    acme = Team.objects.create(name="Acme", slug="acme")
    other = Team.objects.create(name="Other", slug="other")
    Membership.objects.create(team=acme, user=alice)
    Membership.objects.create(team=other, user=charlie)
    return acme




def test_a_user_distills_a_teacher_from_the_browser(acme, live_server, page, worker_process, tmp_path):
    from distill_core.testing import make_tiny_teacher

    labels = demo_labels()
    files = write_demo_slice(tmp_path / "upload", train=240, dev=60, test=60)
    chars = sorted(set("".join(line.split("\t")[0] for line in files["train"].read_text("utf-8").splitlines())))
    make_tiny_teacher(tmp_path / "teachers" / "acme" / "bert-tiny", labels, chars)
    worker = worker_process()
    base = live_server.url

    log_in(page, base, "alice", "alice-pw-123")
    assert "/accounts/login" not in page.url, page.content()[:3000]

    # Upload the dataset.
    page.goto(f"{base}/datasets/new/")
    page.fill("input[name=name]", "THUCNews slice")
    page.set_input_files("input[name=train_file]", str(files["train"]))
    page.set_input_files("input[name=dev_file]", str(files["dev"]))
    page.set_input_files("input[name=test_file]", str(files["test"]))
    page.fill("textarea[name=label_names]", "\n".join(labels))
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert re.search(r"/datasets/\d+/$", page.url), page.content()[:2000]
    screenshot(page, "e2e-dataset")

    # Register the checkpoint.
    page.goto(f"{base}/checkpoints/new/")
    page.fill("input[name=name]", "bert-tiny")
    page.fill("input[name=path]", str(tmp_path / "teachers" / "acme" / "bert-tiny"))
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert re.search(r"/checkpoints/\d+/$", page.url), page.content()[:2000]

    # Create the experiment through the form.
    page.goto(f"{base}/experiments/new/")
    page.fill("input[name=name]", "tiny BERT → TextCNN")
    page.select_option("select[name=student_type]", "textcnn")
    page.fill("input[name=temperature]", "2")
    page.fill("input[name=alpha]", "0.8")
    page.fill("input[name=epochs]", "2")
    page.fill("input[name=batch_size]", "32")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/experiments/\d+/$"))
    experiment = Experiment.objects.get(name="tiny BERT → TextCNN")
    assert experiment.status in Experiment.ACTIVE

    # The page follows the run live and shows the results when the worker is done.
    def finished():
        experiment.refresh_from_db()
        return experiment.is_finished

    wait_for(finished, timeout=180, message=lambda: f"the run to finish; worker log:\n{worker.log()[-3000:]}")
    assert experiment.status == Experiment.Status.SUCCEEDED, experiment.error
    assert MetricPoint.objects.filter(experiment=experiment, key="train/loss").exists()
    assert MetricPoint.objects.filter(experiment=experiment, key="dev/accuracy").count() == 2
    page.wait_for_selector("#results", timeout=30000)

    student_cm = plot_data(page, "cm-student")[0]
    assert student_cm["type"] == "heatmap"
    assert list(student_cm["x"]) == labels and list(student_cm["y"]) == labels
    assert len(student_cm["z"]) == len(labels) and all(len(row) == len(labels) for row in student_cm["z"])
    assert sum(map(sum, student_cm["z"])) == 60  # every test example counted once
    teacher_cm = plot_data(page, "cm-teacher")[0]
    assert sum(map(sum, teacher_cm["z"])) == 60
    size = plot_data(page, "size-chart")
    assert any(trace["name"] for trace in size)
    loss = plot_data(page, "chart-loss")
    assert any(len(trace["x"] or []) > 0 for trace in loss)
    screenshot(page, "e2e-experiment-finished")
    assert page.js_errors == []

    # Another team's member sees none of it.
    other = page.context.browser.new_context()
    other_page = other.new_page()
    log_in(other_page, base, "charlie", "charlie-pw-123")
    for url in (f"/experiments/{experiment.pk}/", f"/datasets/{experiment.dataset_id}/",
                f"/checkpoints/{experiment.teacher_id}/"):
        response = other_page.goto(base + url)
        assert response.status == 404, url
    other.close()
