"""The list, compare and "Try it" in a real browser, on experiments seeded in the database (no worker).

Tick two finished runs on the list → Compare → the curves and Pareto scatter plots carry their
data; tags and notes are edited inline; the experiment page answers "Try it" with a real tiny
teacher and student. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import log_in, plot_data, screenshot
from tests.webapp.factories import LABELS, TRAIN_ROWS, add_points, sample_results
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

pytestmark = [pytest.mark.browser]


def results_with(acc: float, f1: float, size: int, latency: float, export_dir: str | None) -> dict:
    results = sample_results()
    results["student"].update(accuracy=acc, macro_f1=f1)
    results["size"]["student"].update(bytes=size, parameters=size // 4, latency_ms_b1=latency,
                                      latency_ms_b32=latency * 4)
    results["export_dir"] = export_dir
    return results


@pytest.fixture
def seeded(transactional_db, tmp_path, settings):
    """Alice of Acme with three finished runs (two compared), a real tiny teacher and student export."""
    import torch

    from distill_core.export import save_student
    from distill_core.students import build_student
    from distill_core.testing import make_tiny_teacher
    from distill_core.vocab import Vocab

    settings.CHECKPOINT_ROOTS = [tmp_path / "teachers"]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    teacher_path = make_tiny_teacher(tmp_path / "teachers" / "bert-tiny", LABELS,
                                     "".join(text for text, _ in TRAIN_ROWS))
    torch.manual_seed(0)
    vocab = Vocab.build([text for text, _ in TRAIN_ROWS], "char")
    export = save_student(build_student("textcnn", vocab.vocab_size, len(LABELS), 16, {"num_filters": 8}), vocab,
                          student_type="textcnn", embedding_dim=16, labels=LABELS, max_length=16,
                          output_dir=tmp_path / "artifacts" / "experiments" / "1" / "student")

    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    acme = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=acme, user=alice)
    checkpoint = Checkpoint.objects.create(team=acme, name="bert-tiny", path=str(teacher_path),
                                           info={"num_labels": 3, "labels": LABELS})
    dataset = Dataset.objects.create(team=acme, name="headlines", train_path=str(tmp_path / "train.tsv"),
                                     labels=LABELS)

    def make(name: str, student: str, temperature: float, results: dict, curve: float) -> Experiment:
        config = {"name": name, "seed": 42, "teacher": {"path": str(teacher_path)},
                  "data": {"labels": LABELS, "max_length": 16}, "student": {"type": student, "vocab": "char"},
                  "kd": {"temperature": temperature, "alpha": 0.5}, "train": {"epochs": 3, "batch_size": 32}}
        experiment = Experiment.objects.create(
            team=acme, owner=alice, name=name, teacher=checkpoint, dataset=dataset, student_type=student,
            config=config, status=Experiment.Status.SUCCEEDED, progress=1.0, current_step=300, total_steps=300,
            best={"dev/accuracy": results["best_dev"]["accuracy"]}, latest={"train/loss": curve / 4},
            results=results)
        add_points(experiment, "train/loss", {s: curve * (1 + 10 / (s + 10)) for s in range(0, 301, 10)})
        add_points(experiment, "dev/accuracy", {100: 0.6 * curve + 0.3, 200: 0.65 * curve + 0.3, 300: 0.7 * curve + 0.3})
        add_points(experiment, "dev/macro_f1", {100: 0.55 * curve + 0.3, 200: 0.6 * curve + 0.3, 300: 0.66 * curve + 0.3})
        return experiment

    cnn = make("BERT → TextCNN, T=2", "textcnn", 2.0, results_with(0.81, 0.79, 4_800_000, 0.8, str(export)), 0.6)
    lstm = make("BERT → BiLSTM, T=4", "bilstm", 4.0, results_with(0.86, 0.85, 12_400_000, 2.6, None), 0.5)
    make("BERT → TextCNN, T=8", "textcnn", 8.0, results_with(0.78, 0.76, 4_800_000, 0.9, None), 0.7)
    return {"cnn": cnn, "lstm": lstm}




def test_a_user_compares_two_runs_from_the_list(seeded, live_server, page):
    base = live_server.url
    cnn, lstm = seeded["cnn"], seeded["lstm"]
    log_in(page, base)
    page.goto(f"{base}/")
    assert page.is_disabled("#compare-button")

    # Tags and notes, inline; HTML stays text.
    row = page.locator(f'tr[data-experiment="{cnn.pk}"]')
    row.locator("[data-edit]").click()
    page.fill("#annotate-tags", "baseline, <b>bad</b>")
    page.click("#annotate-save")
    page.wait_for_selector("#annotate-error:not([hidden])")
    assert "not a valid tag" in page.inner_text("#annotate-error")
    page.fill("#annotate-tags", "baseline, t=2")
    page.fill("#annotate-notes", "<i>first</i> try: the smallest student")
    screenshot(page, "list-editing-tags")
    page.click("#annotate-save")
    page.wait_for_selector("#annotate-editor", state="hidden")
    assert row.locator(".tag").all_inner_texts() == ["baseline", "t=2"]
    assert row.locator("[data-notes]").inner_text() == "<i>first</i> try: the smallest student"
    assert Experiment.objects.get(pk=cnn.pk).notes == "<i>first</i> try: the smallest student"

    page.check(f'input[name=ids][value="{cnn.pk}"]')
    page.check(f'input[name=ids][value="{lstm.pk}"]')
    assert page.inner_text("#compare-count") == "2 selected"
    screenshot(page, "compare-list")
    page.click("#compare-button")
    # The ids follow the list's order: newest first.
    page.wait_for_url(re.compile(rf".*/compare/\?ids={lstm.pk},{cnn.pk}$"))

    size = plot_data(page, "scatter-size")
    front, points = size[0], size[1:]
    assert front["name"] == "Pareto front"
    assert [p["name"] for p in points] == [lstm.name, cnn.name]
    assert [p["x"][0] for p in points] == [12.4, 4.8] and [p["y"][0] for p in points] == [0.86, 0.81]
    assert list(front["x"]) == [4.8, 12.4]  # neither is both smaller and more accurate: both on the front
    assert [p["symbol"] for p in points] == ["star", "star"]
    latency = plot_data(page, "scatter-latency")
    assert [p["x"][0] for p in latency[1:]] == [2.6, 0.8]

    loss = plot_data(page, "compare-loss")
    assert len(loss) == 2 and all(len(t["x"]) == 31 for t in loss)
    dev = plot_data(page, "compare-dev")
    assert len(dev) == 4 and sorted(len(t["x"]) for t in dev) == [3, 3, 3, 3]

    diff_keys = page.locator("#config-diff tbody th").all_inner_texts()
    assert diff_keys == ["kd.temperature", "student.type"]
    assert page.locator("#compare-results tbody tr").count() == 2
    screenshot(page, "compare-page")

    # With the third run (less accurate and no smaller than the TextCNN at T=2) it is marked dominated.
    third = Experiment.objects.get(name="BERT → TextCNN, T=8")
    page.goto(f"{base}/compare/?ids={cnn.pk},{lstm.pk},{third.pk}")
    size = plot_data(page, "scatter-size")
    assert [p["symbol"] for p in size[1:]] == ["star", "star", "circle"]
    assert list(size[0]["x"]) == [4.8, 12.4]
    assert page.js_errors == []


def test_a_user_tries_a_finished_student(seeded, live_server, page):
    base = live_server.url
    cnn = seeded["cnn"]
    log_in(page, base)
    page.goto(f"{base}/experiments/{cnn.pk}/")
    page.fill("#try-it-texts", "central bank cuts rates\nstriker scores twice\n<script>alert(1)</script>")
    page.click("#try-it-submit")
    page.wait_for_selector("#try-it-results:not([hidden])")
    rows = page.locator("#try-it-results tbody tr")
    assert rows.count() == 3
    assert rows.nth(2).locator("td").first.inner_text() == "<script>alert(1)</script>"
    assert rows.nth(0).locator(".prob-top .prob-label").first.inner_text() in LABELS
    assert "agrees with the teacher" in page.inner_text("#try-it-status")
    href = page.get_attribute("a[href$='/student.zip']", "href")
    assert href == f"/experiments/{cnn.pk}/student.zip"
    screenshot(page, "experiment-try-it")
    assert page.js_errors == []
