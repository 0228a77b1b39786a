"""A language-model run from the browser with a real worker: upload LM data, preview it, queue, watch, try it.

Log in → upload prompt/response JSONL as a language-model dataset → register a tiny random GPT-2
(save_pretrained) → the dataset page renders token-length histograms with its tokenizer → the form
takes the LM kind from the dataset and offers only datasets of the kind → the worker runs it → the
page shows the generated samples → Try it streams the teacher's and the student's continuations.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from distill_core.lm.testing import make_tiny_lm, write_toy_data
from tests.conftest import wait_for
from tests.e2e.conftest import log_in, plot_data, screenshot
from webapp.accounts.models import Membership, Team
from webapp.experiments.models import Experiment

pytestmark = [pytest.mark.worker, pytest.mark.browser]


@pytest.fixture
def acme(transactional_db, tmp_path, settings):
    settings.CHECKPOINT_ROOTS = [tmp_path / "teachers"]
    settings.DATASET_ROOT = tmp_path / "datasets"
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    alice = get_user_model().objects.create_user("alice", password="alice-pw-123")
    acme = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=acme, user=alice)
    return acme


def submit(page) -> None:
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def open_section(page, name: str) -> None:
    if page.get_attribute(f"#section-{name}", "open") is None:
        page.click(f"#section-{name} > summary")


def test_a_user_distils_a_language_model_from_the_browser(acme, live_server, page, worker_process, tmp_path):
    (tmp_path / "upload").mkdir()
    train = write_toy_data(tmp_path / "upload" / "train.jsonl", 48, seed=1, rule=True)
    dev = write_toy_data(tmp_path / "upload" / "dev.jsonl", 12, seed=2, rule=True)
    teacher = make_tiny_lm(tmp_path / "teachers" / "acme" / "tiny-gpt2", "gpt2", layers=4)
    worker = worker_process()
    base = live_server.url
    log_in(page, base)

    # Upload the language-model dataset.
    page.goto(f"{base}/datasets/new/")
    page.fill("input[name=name]", "toy QA")
    assert page.is_hidden("#field-prompt_key") and page.is_visible("#field-label_column")
    page.select_option("select[name=kind]", "lm")
    assert page.is_visible("#field-prompt_key") and page.is_hidden("#field-label_column")
    page.select_option("select[name=format]", "jsonl")
    page.set_input_files("input[name=train_file]", str(train))
    page.set_input_files("input[name=dev_file]", str(dev))
    submit(page)
    assert re.search(r"/datasets/\d+/$", page.url), page.content()[:3000]
    assert "what does the" in page.inner_text("#lm-preview")
    dataset_url = page.url

    # Register the teacher.
    page.goto(f"{base}/checkpoints/new/")
    page.fill("input[name=name]", "tiny-gpt2")
    page.fill("input[name=path]", str(teacher))
    submit(page)
    assert re.search(r"/checkpoints/\d+/$", page.url), page.content()[:3000]

    # The dataset page renders the prompts with its tokenizer and draws token-length histograms.
    page.goto(dataset_url)
    page.select_option("#lm-checkpoint", label="tiny-gpt2")
    submit(page)
    assert "checkpoint=" in page.url and "prompt tokens" in page.inner_text("#lm-preview").lower()
    prompt_hist = plot_data(page, "lm-prompt-lengths")[0]
    assert prompt_hist["type"] == "bar" and sum(prompt_hist["y"]) == 48
    screenshot(page, "e2e-lm-dataset")

    # "Distil on it": the form takes the run kind from the LM dataset, and the kind keeps the menu to its datasets.
    page.click("text=Distil on it")
    page.wait_for_load_state()
    assert page.eval_on_selector("select[name=kind]", "s => s.value") == "lm_distill"
    assert page.eval_on_selector("select[name=dataset]", "s => s.options[s.selectedIndex].text") == "toy QA"
    open_section(page, "advanced")
    page.select_option("select[name=kind]", "distill")
    assert page.eval_on_selector("select[name=dataset]", "s => s.value") == ""  # no classification dataset
    page.select_option("select[name=kind]", "lm_distill")
    assert page.eval_on_selector("select[name=dataset]", "s => s.options[s.selectedIndex].text") == "toy QA"
    page.fill("input[name=name]", "gpt2 → 2 layers")
    page.fill("input[name=epochs]", "1")
    page.fill("input[name=batch_size]", "8")
    open_section(page, "lm")
    page.fill("input[name=lm_layers]", "2")
    page.fill("input[name=lm_top_k]", "8")
    page.fill("textarea[name=lm_sample_prompts]", "what does the red cat ?\nwhat does the blue dog ?")
    page.fill("input[name=lm_sample_max_new_tokens]", "4")
    page.click("#experiment-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/experiments/\d+/$"))
    experiment = Experiment.objects.get(name="gpt2 → 2 layers")
    assert experiment.config["kind"] == "lm_distill" and experiment.config["lm"]["prompt_key"] == "prompt"

    def finished():
        experiment.refresh_from_db()
        return experiment.is_finished

    wait_for(finished, timeout=240, message=lambda: f"the run to finish; worker log:\n{worker.log()[-3000:]}")
    assert experiment.status == Experiment.Status.SUCCEEDED, experiment.error
    # the page reloads itself once its status poll sees the run finished (a reload from here could race it)
    page.wait_for_selector("#lm-samples", timeout=60_000)
    samples = page.inner_text("#lm-samples")
    for sample in experiment.results["samples"]:
        assert sample["prompt"] in samples and sample["teacher"] in samples and sample["student"] in samples
    screenshot(page, "e2e-lm-experiment")

    # Try it streams both continuations.
    page.fill("#lm-try-it-prompt", "what does the green bird ?")
    page.fill("#lm-try-it-max", "5")
    page.click("#lm-try-it-submit")
    page.wait_for_function("() => document.getElementById('lm-try-it-status').textContent === 'Done.'",
                           timeout=60000)
    assert page.inner_text("#lm-try-it-teacher").strip() and page.inner_text("#lm-try-it-student").strip()
    screenshot(page, "e2e-lm-try-it")
    assert page.js_errors == []
