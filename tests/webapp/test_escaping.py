"""Hostile text (HTML/JS in names, labels, errors) is escaped everywhere it is shown."""

from __future__ import annotations

import json

from tests.webapp.factories import sample_results
from webapp.experiments.models import Checkpoint, Dataset, Experiment

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def assert_escaped(html: str):
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "\\u003Cscript\\u003E" in html


def test_names_are_escaped_on_every_page(alice_client, acme, make_experiment):
    experiment = make_experiment(Experiment.Status.SUCCEEDED, name=EVIL, results=sample_results())
    Checkpoint.objects.filter(pk=experiment.teacher_id).update(name=EVIL)
    Dataset.objects.filter(pk=experiment.dataset_id).update(name=EVIL + "d")
    for url in ("/", f"/experiments/{experiment.pk}/", f"/checkpoints/{experiment.teacher_id}/", "/checkpoints/",
                f"/datasets/{experiment.dataset_id}/", "/datasets/", "/experiments/new/"):
        response = alice_client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode())


def test_labels_in_chart_data_cannot_close_the_script_tag(alice_client, make_experiment):
    labels = ["</script><script>alert(1)</script>", "b&b", "c"]
    experiment = make_experiment(Experiment.Status.SUCCEEDED, results=sample_results(labels))
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert "</script><script>alert(1)" not in html
    block = html.split('id="results-charts" type="application/json">')[1].split("</script>")[0]
    assert json.loads(block)["labels"] == labels


def test_dataset_labels_and_rows_are_escaped(alice_client, dataset, tmp_path):
    path = tmp_path / "evil.tsv"
    path.write_text(f"{EVIL}\t{EVIL}\nplain\tok\n", encoding="utf-8")
    Dataset.objects.filter(pk=dataset.pk).update(train_path=str(path), dev_path="", labels=[EVIL, "ok"],
                                                 stats={"train": {"rows": 2, "class_counts": [1, 1]}})
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert_escaped(html)


def test_an_evil_checkpoint_path_is_not_rendered_raw(alice_client, acme, teacher_dir):
    response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "path": f"/{EVIL}"})
    assert response.status_code == 200
    assert_escaped(response.content.decode())
