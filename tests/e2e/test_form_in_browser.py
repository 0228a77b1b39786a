"""The new-experiment form in a real browser: the chosen student's options, a matches preset, the row
editor, and what the submit stores. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.e2e.conftest import screenshot
from tests.webapp.factories import LABELS, TRAIN_ROWS
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

pytestmark = [pytest.mark.browser]


@pytest.fixture
def seeded(transactional_db, tmp_path, settings, monkeypatch):
    """Alice of Acme with a 12-layer tiny teacher (so the L3 presets fit) and a dataset."""
    from distill_core.teachers import inspect_checkpoint
    from distill_core.testing import make_tiny_teacher

    monkeypatch.setattr("workers.dispatch.wake_workers", lambda pool: None)
    settings.CHECKPOINT_ROOTS = [tmp_path / "teachers"]
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    path = make_tiny_teacher(tmp_path / "teachers" / "bert-12x32", LABELS, "".join(t for t, _ in TRAIN_ROWS),
                             layers=12, hidden=32)
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    acme = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=acme, user=alice)
    Checkpoint.objects.create(team=acme, name="bert-12x32", path=str(path), info=inspect_checkpoint(path))
    (tmp_path / "train.tsv").write_text("".join(f"{t}\t{label}\n" for t, label in TRAIN_ROWS), encoding="utf-8")
    Dataset.objects.create(team=acme, name="headlines", train_path=str(tmp_path / "train.tsv"), labels=LABELS)
    return acme


def open_form(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pw-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}/experiments/new/")


def open_section(page, name: str) -> None:
    if page.get_attribute(f"#section-{name}", "open") is None:
        page.click(f"#section-{name} > summary")


def submit(page) -> None:
    # Focus and Enter rather than a click: right after a full-page screenshot Chromium may still be
    # restoring the viewport, and a click at the button's coordinates then lands nowhere.
    button = page.locator("#experiment-form button[type=submit]")
    button.focus()
    page.keyboard.press("Enter")


def test_a_transformer_with_a_matches_preset_is_queued_from_the_browser(seeded, live_server, page):
    open_form(page, live_server.url)
    page.fill("input[name=name]", "BERT → T3 with L3 hidden MMD")
    assert not page.is_visible("select[name=matches_preset]")  # the matches group starts folded
    open_section(page, "student")
    assert page.is_visible("#id_cnn_num_filters") and not page.is_visible("#id_rnn_hidden_size")
    assert not page.is_visible("#id_tf_preset")

    page.select_option("select[name=student_type]", "bilstm")
    assert page.is_visible("#id_rnn_hidden_size") and not page.is_visible("#id_cnn_num_filters")
    page.select_option("select[name=student_type]", "transformer")
    assert page.is_visible("#id_tf_preset") and not page.is_visible("#id_rnn_hidden_size")
    open_section(page, "sweep")
    page.fill("input[name=sweep_student_type]", "transformer, bigru")  # a swept student's options show too
    assert page.is_visible("#id_rnn_hidden_size") and not page.is_visible("#id_cnn_num_filters")
    page.fill("input[name=sweep_student_type]", "")
    assert not page.is_visible("#id_rnn_hidden_size")
    page.select_option("select[name=student_vocab]", "teacher")
    page.check("input[name=student_prune_vocab]")
    page.select_option("select[name=tf_preset]", "custom")
    for name, value in (("tf_layers", "3"), ("tf_hidden", "16"), ("tf_heads", "2"), ("tf_ffn", "32")):
        page.fill(f"input[name={name}]", value)

    open_section(page, "matches")
    assert not page.is_visible("select[name=matches_preset]")
    page.check("input[name=matches_mode][value=preset]")
    assert page.is_visible("select[name=matches_preset]") and not page.is_visible("select[name=generate_loss]")
    page.select_option("select[name=matches_preset]", "L3_hidden_smmd")
    open_section(page, "kd")
    page.fill("input[name=temperature]", "4")
    open_section(page, "resources")
    page.fill("input[name=priority]", "5")
    for name in ("schedules", "augment", "optimisation", "sweep", "advanced"):
        open_section(page, name)
    assert page.is_visible("textarea[name=stages]") and page.is_visible("input[name=sweep_alpha]")
    screenshot(page, "form-transformer-preset")
    submit(page)
    page.wait_for_url(re.compile(r".*/experiments/\d+/$"), timeout=90_000)
    experiment = Experiment.objects.get()
    assert experiment.config["student"] == {"type": "transformer", "vocab": "teacher", "embedding_dim": 128,
                                            "embedding_init": "auto", "embedding_file": None,
                                            "embedding_projection": "frozen", "prune_vocab": True, "prune_unseen": "unk",
                                            "options": {"preset": "custom", "layers": 3, "hidden": 16, "heads": 2,
                                                        "ffn": 32, "dropout": 0.1}}
    assert experiment.config["matches"] == "L3_hidden_smmd"
    assert experiment.config["kd"]["temperature"] == 4.0 and experiment.priority == 5
    assert page.js_errors == []


def test_teacher_embeddings_neighbour_augmentation_and_tune_kd_are_set_from_the_browser(seeded, live_server, page):
    open_form(page, live_server.url)
    page.fill("input[name=name]", "BiGRU from the teacher's embeddings, tuned")
    open_section(page, "student")
    page.select_option("select[name=student_type]", "bigru")
    page.select_option("select[name=student_vocab]", "teacher")
    page.select_option("select[name=embedding_init]", "teacher")
    page.select_option("select[name=student_embedding_projection]", "frozen")
    open_section(page, "augment")
    page.check("input[name=augment]")
    page.select_option("select[name=augment_replace]", "teacher_neighbours")
    page.fill("input[name=augment_neighbours]", "10")
    open_section(page, "kd")
    page.check("input[name=tune_kd]")
    page.fill("input[name=tune_temperatures]", "1, 4")
    page.fill("input[name=tune_alphas]", "0.2, 0.8")
    page.fill("input[name=tune_steps]", "150")
    screenshot(page, "form-teacher-embeddings-tune-kd")
    submit(page)
    page.wait_for_url(re.compile(r".*/experiments/\d+/$"), timeout=90_000)
    config = Experiment.objects.get().config
    assert {k: config["student"][k] for k in ("type", "vocab", "embedding_init", "embedding_projection")} == {
        "type": "bigru", "vocab": "teacher", "embedding_init": "teacher", "embedding_projection": "frozen"}
    assert config["augment"]["enabled"] and config["augment"]["replace"] == "teacher_neighbours"
    assert config["augment"]["neighbours"] == 10
    assert config["tune"]["enabled"] and config["tune"]["steps"] == 150
    assert config["tune"]["temperatures"] == [1.0, 4.0] and config["tune"]["alphas"] == [0.2, 0.8]
    assert page.js_errors == []


def test_match_rows_are_edited_in_the_table_and_errors_name_the_row(seeded, live_server, page):
    open_form(page, live_server.url)
    page.fill("input[name=name]", "BiLSTM with hidden matches")
    open_section(page, "student")
    page.select_option("select[name=student_type]", "bilstm")
    page.select_option("select[name=student_vocab]", "teacher")
    page.fill("input[name=embedding_dim]", "32")
    page.fill("input[name=rnn_hidden_size]", "16")
    open_section(page, "matches")
    page.check("input[name=matches_mode][value=rows]")
    assert not page.is_visible("textarea[name=match_rows]")  # the table edits the hidden JSON
    page.click("#match-add")
    page.click("#match-add")
    rows = page.locator("#match-editor tbody tr")
    rows.nth(1).locator("input[data-key=layer_T]").fill("13")
    rows.nth(1).locator("input[data-key=layer_S]").fill("1")
    with page.expect_navigation(timeout=90_000):  # the refusal is a new page, rendered by the server
        submit(page)
    error = page.locator("#section-matches .alert-error").inner_text()
    assert "match 1: layer_T=13 but the teacher has hidden states 0..12" in error
    assert page.get_attribute("#section-matches", "open") is not None
    assert page.locator("#match-editor tbody tr.row-error input.input-error").get_attribute("data-key") == "layer_T"
    screenshot(page, "form-match-rows-error")
    assert Experiment.objects.count() == 0

    rows = page.locator("#match-editor tbody tr")
    assert rows.count() == 2  # the rows survive the round trip
    rows.nth(1).locator("input[data-key=layer_T]").fill("12")
    rows.nth(1).locator("input[data-key=weight]").fill("0.5")
    submit(page)
    page.wait_for_url(re.compile(r".*/experiments/\d+/$"), timeout=90_000)
    assert Experiment.objects.get().config["matches"] == [
        {"layer_T": 0, "layer_S": 0, "feature": "hidden", "loss": "hidden_mse", "weight": 1.0, "proj": None},
        {"layer_T": 12, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "weight": 0.5, "proj": None}]
    assert page.js_errors == []
