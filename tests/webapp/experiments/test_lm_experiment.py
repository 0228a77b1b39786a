"""The language-model run kind through the web: the form queues it, the worker runs it, the page shows samples."""

from __future__ import annotations

import pytest

from distill_core.lm.testing import make_tiny_lm, write_toy_data
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.metrics.models import MetricPoint
from webapp.registry.models import Checkpoint, Dataset
from workers.tasks import execute


@pytest.fixture
def lm_checkpoint(acme, alice, teacher_root) -> Checkpoint:
    from distill_core.teachers import inspect_checkpoint

    path = teacher_root / "acme" / "tiny-gpt2"
    if not path.is_dir():
        make_tiny_lm(path, "gpt2", layers=4)
    return Checkpoint.objects.create(team=acme, name="tiny-gpt2", path=str(path), info=inspect_checkpoint(path),
                                     created_by=alice)


@pytest.fixture
def lm_dataset(acme, alice, tmp_path) -> Dataset:
    train, dev = write_toy_data(tmp_path / "train.jsonl", 32, seed=1), write_toy_data(tmp_path / "dev.jsonl", 8, seed=2)
    return Dataset.objects.create(team=acme, name="toy-qa", train_path=str(train), dev_path=str(dev), format="jsonl",
                                  kind=Dataset.Kind.LM, labels=[], created_by=alice)


def form(acme, checkpoint, dataset, **extra) -> dict:
    return {"name": "gpt2 → 2 layers", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
            "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8",
            "learning_rate": "0.002", "max_length": "24", "kind": "lm_distill", "lm_mode": "offline",
            "lm_loss": "jsd", "lm_beta": "0.5", "lm_layers": "2", "lm_top_k": "8", "lm_samples": "2",
            "lm_sample_max_new_tokens": "4", "lm_sample_prompts": "what does the red cat ?\nwhat does the dog ?",
            **extra}


def test_the_form_queues_a_language_model_run_with_its_options(alice_client, acme, lm_checkpoint, lm_dataset):
    response = alice_client.post("/experiments/new/", form(acme, lm_checkpoint, lm_dataset))
    assert response.status_code == 302, response.content.decode()[:3000]
    config = Experiment.objects.get().config
    assert config["kind"] == "lm_distill"
    assert {k: config["lm"][k] for k in ("mode", "loss", "beta", "layers", "top_k")} == {
        "mode": "offline", "loss": "jsd", "beta": 0.5, "layers": 2, "top_k": 8}
    assert config["lm"]["sample_prompts"] == ["what does the red cat ?", "what does the dog ?"]


def test_a_bad_lm_option_is_refused_on_its_field(alice_client, acme, lm_checkpoint, lm_dataset):
    response = alice_client.post("/experiments/new/", form(acme, lm_checkpoint, lm_dataset, lm_beta="1.5"))
    assert response.status_code == 400 and "lm_beta" in response.context["form"].errors
    assert not Experiment.objects.exists()


def test_the_new_experiment_page_offers_the_kind_and_its_section(alice_client, lm_checkpoint, lm_dataset):
    html = alice_client.get("/experiments/new/").content.decode()
    assert 'value="lm_distill"' in html and 'id="section-lm"' in html and 'name="lm_mode"' in html


def test_a_worker_runs_it_and_the_page_shows_perplexity_and_samples(transactional_db, alice_client, acme,
                                                                    lm_checkpoint, lm_dataset):
    response = alice_client.post("/experiments/new/", form(acme, lm_checkpoint, lm_dataset))
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert queue.claim_next("default", "w1", "token-1") == experiment.pk
    execute(experiment.pk, "token-1")
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.SUCCEEDED, experiment.error
    assert MetricPoint.objects.filter(experiment=experiment, key="dev/perplexity").exists()
    assert MetricPoint.objects.filter(experiment=experiment, key="train/distill_loss").exists()
    samples = experiment.results["samples"]
    assert [s["prompt"] for s in samples] == ["what does the red cat ?", "what does the dog ?"]

    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert 'id="lm-samples"' in html and 'id="chart-perplexity"' in html and 'id="lm-size"' in html
    for sample in samples:
        assert sample["teacher"] in html and sample["student"] in html
    assert "Tokens/s, batch 8" in html and 'id="cm-student"' not in html

    # A second, smaller run to compare with: the same result with another student size.
    other = Experiment.objects.create(team=acme, owner=experiment.owner, name="other", teacher=lm_checkpoint,
                                      dataset=lm_dataset, config=experiment.config, status=Experiment.Status.SUCCEEDED,
                                      results={**experiment.results, "size": {**experiment.results["size"], "student": {
                                          **experiment.results["size"]["student"], "bytes": 1}}})
    response = alice_client.get(f"/compare/?ids={experiment.pk},{other.pk}")
    assert response.status_code == 200
    compare = response.content.decode()
    assert "Perplexity vs size" in compare and "test perplexity" in compare
    assert f"{experiment.results['student']['perplexity']:.3f}" in compare
