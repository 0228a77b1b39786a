"""Hostile input through the HTML forms and staff actions: refused on its field, or stored and escaped.

Forms are shown again (200) with the message on the field to fix; a staff action whose input
cannot be used shows the queue again with a 400 and the message. Text that is allowed (HTML,
JavaScript, quotes) is stored as given and escaped wherever it is shown.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from tests.webapp.factories import sample_results
from tests.webapp.hostile.checks import assert_form_refused
from webapp.experiments.models import Experiment
from webapp.gpuqueue.models import Pool
from webapp.registry.models import Checkpoint, Dataset

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def assert_escaped(html: str):
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "\\u003Cscript\\u003E" in html


# --- the new-experiment form -------------------------------------------------------------------

EXPERIMENT_CASES = {
    "stages nested 10,000 deep": ({"stages": "[" * 10_000}, "stages", "the JSON is nested too deeply"),
    "a NUL in a stage name": ({"stages": '[{"name": "a\\u0000b", "epochs": 1}]'}, "stages",
                              "stages[0].name contains a NUL character"),
    "a surrogate in a stage name": ({"stages": '[{"name": "\\ud800", "epochs": 1}]'}, "stages",
                                    "stages[0].name contains an unpaired surrogate (U+D800)"),
    "a 5,000-digit stage epoch count": ({"stages": '[{"epochs": ' + "9" * 5000 + "}]"}, "stages",
                                        "more than 4,300 digits"),
    "NaN in the stages": ({"stages": '[{"epochs": NaN}]'}, "stages", "NaN is not a number JSON allows"),
    "match rows nested 10,000 deep": ({"match_rows": "[" * 10_000, "matches_mode": "rows"}, "match_rows",
                                      "nested too deeply"),
    "a NUL in a match row": ({"match_rows": '[{"loss": "\\u0000"}]', "matches_mode": "rows"}, "match_rows",
                             "match_rows[0].loss contains a NUL character"),
    "a NUL in the name": ({"name": "a\x00b"}, "name", "Null characters are not allowed"),
    "a NUL in the ensemble": ({"ensemble": "tiny-bert\x00 1"}, "ensemble", "Null characters are not allowed"),
    "a NUL in the pool": ({"pool": "gpu\x00"}, "pool", "Null characters are not allowed"),
    "an upper-case pool": ({"pool": "A100"}, "pool", "lower-case letters"),
    "a NUL label separator": ({"multi_label": "on", "label_separator": "\x00"}, "label_separator", "Null"),
    "a superscript filter size": ({"cnn_filter_sizes": "²"}, "cnn_filter_sizes", "is not a whole number"),
    "a superscript sweep": ({"sweep_alpha": "²"}, "sweep_alpha", ""),
    "another team's teacher id": ({"teacher": str(10**30)}, "teacher", "valid choice"),
}


@pytest.mark.parametrize("changes, field, text", EXPERIMENT_CASES.values(), ids=EXPERIMENT_CASES.keys())
def test_the_new_experiment_form_refuses_hostile_fields(alice_client, form_data, wake, unchanged, changes, field,
                                                        text):
    with unchanged():
        response = alice_client.post("/experiments/new/", {**form_data, **changes})
    assert_form_refused(response, field, text)
    assert wake == []


# --- the checkpoint form -----------------------------------------------------------------------

@pytest.mark.parametrize("changes, field, text", [
    ({"path": "/tmp/a\x00b"}, "path", "Null characters are not allowed"),
    ({"name": "a\x00b"}, "name", "Null characters are not allowed"),
    ({"path": "relative/dir"}, "path", "absolute path"),
    ({"path": "/" + "a" * 2000}, "path", "at most 1000 characters"),
    ({"path": "/etc"}, "path", "checkpoint folder"),
    ({"team": str(10**30)}, "team", "valid choice"),
])
def test_the_checkpoint_form_refuses_hostile_fields(alice_client, acme, unchanged, changes, field, text):
    with unchanged():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "path": "/tmp", **changes})
    assert_form_refused(response, field, text)


def test_an_evil_checkpoint_path_is_not_rendered_raw(alice_client, acme, unchanged):
    with unchanged():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "x", "path": f"/{EVIL}"})
    assert_escaped(assert_form_refused(response, "path", "checkpoint folder"))


# --- staff actions on the queue ----------------------------------------------------------------

@pytest.fixture
def staff_client(client, db):
    client.force_login(get_user_model().objects.create_user("root", password="pw", is_staff=True))
    return client


@pytest.mark.parametrize("pool", ["gpu\x00", "\x00", "A100", "<script>", "a" * 51, "-a", "a b", "池"])
@pytest.mark.parametrize("paused", ["1", "0"])
def test_pausing_a_pool_refuses_a_name_that_is_not_a_pool(staff_client, wake, unchanged, pool, paused):
    with unchanged():
        response = staff_client.post("/queue/pause/", {"pool": pool, "paused": paused})
    assert response.status_code == 400
    html = response.content.decode()
    assert "is not a pool name. A pool name is lower-case letters, digits, - and _." in html
    assert "<script>" not in html.split("<main")[-1] and wake == []
    assert not Pool.objects.exists()


@pytest.mark.parametrize("url, data", [
    ("/queue/{pk}/ahead/", {"other": "\x00"}), ("/queue/{pk}/ahead/", {"other": "²"}),
    ("/queue/{pk}/priority/", {"priority": "\x00"}), ("/queue/{pk}/priority/", {"priority": "²"}),
    ("/queue/{pk}/priority/", {"priority": "9" * 5000}),
])
def test_other_staff_actions_refuse_hostile_values_with_a_warning(staff_client, experiment, unchanged, url, data):
    with unchanged():
        response = staff_client.post(url.format(pk=experiment.pk), data, follow=True)
    assert response.status_code == 200
    warnings = [str(m) for m in response.context["messages"]]
    assert warnings and ("Pick an experiment" in warnings[0] or "whole number" in warnings[0])
    experiment.refresh_from_db()
    assert experiment.priority == 0


@pytest.mark.parametrize("url, data", [
    ("/queue/workers/{pk}/mode/", {"mode": "\x00"}), ("/queue/teams/{pk}/limit/", {"max_running": "²"}),
    ("/queue/teams/{pk}/limit/", {"max_running": "\x00"}),
])
def test_worker_and_team_settings_refuse_hostile_values(staff_client, acme, unchanged, url, data):
    from webapp.gpuqueue.models import Worker

    worker = Worker.objects.create(name="gpu0@h", host="h")
    pk = worker.pk if "workers" in url else acme.pk
    with unchanged():
        response = staff_client.post(url.format(pk=pk), data, follow=True)
    assert response.status_code == 200 and [str(m) for m in response.context["messages"]]
    acme.refresh_from_db()
    worker.refresh_from_db()
    assert acme.max_running == 0 and worker.mode == Worker.Mode.ACTIVE


# --- what is allowed is escaped wherever it is shown --------------------------------------------

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
