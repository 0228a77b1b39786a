"""Hostile query strings: a filter that cannot be used is refused (4xx) with a note naming it, never a 500.

The experiments list still shows the page (the other filters applied) with a 400 and a note per
dropped filter; the JSON endpoints answer their error shape.
"""

from __future__ import annotations

import pytest

from tests.webapp.hostile.checks import assert_json_refused
from webapp.experiments.models import Experiment

HUGE = 10**30
S = Experiment.Status


@pytest.fixture
def runs(make_experiment):
    return [make_experiment(S.SUCCEEDED, name="alpha", notes="low temperature"), make_experiment(S.FAILED, name="b")]


# (query, the note the page shows)
LIST_QUERIES = {
    "a NUL in the search": ("?q=%00", "Ignored the search: it contains a NUL character"),
    "a NUL inside the search": ("?q=low%00temp", "Ignored the search: it contains a NUL character"),
    "a NUL in the tag": ("?tag=a%00", "Ignored the tag filter: it contains a NUL character"),
    "a NUL in the student": ("?student=%00textcnn", "Ignored the student filter: it contains a NUL character"),
    "a NUL in the status": ("?status=%00", "Ignored the status filter"),
    "a NUL in the sort": ("?sort=%00", "Ignored the sort order"),
    "a NUL as the dataset": ("?dataset=%00", "Ignored the dataset filter"),
    "a negative teacher": ("?teacher=-3", "Ignored the teacher filter"),
    "a float teacher": ("?teacher=1e99", "Ignored the teacher filter"),
    "a superscript teacher": ("?teacher=%C2%B2", "Ignored the teacher filter"),
    "a huge owner": ("?owner=99999999999999999999999999", "Ignored the owner filter"),
    "an HTML status": ("?status=%3Cscript%3E", "Ignored the status filter"),
    "a JSON-path sort": ("?sort=config", "Ignored the sort order"),
    "a results sort": ("?sort=-results__student", "Ignored the sort order"),
    "a 5,000-character search": ("?q=" + "x" * 5000, "Ignored the search: it is longer than 200 characters"),
}


@pytest.mark.parametrize("query, note", LIST_QUERIES.values(), ids=LIST_QUERIES.keys())
def test_the_list_refuses_a_filter_it_cannot_use_with_a_note(alice_client, runs, unchanged, query, note):
    with unchanged():
        response = alice_client.get("/" + query)
    assert response.status_code == 400
    html = response.content.decode()
    assert note in html and "<script>" not in html
    assert "alpha" in html, "the page is still shown, without the dropped filter"


@pytest.mark.parametrize("query", [
    "?page=-1", "?page=99999999999999999999999", "?page=abc", "?page=%00",
    "?q=%F0%9F%A4%96%E4%B8%AD%E6%96%87", "?q=%ED%A0%80", "?tag=%3Cb%3Ex%3C/b%3E", "?student=%27%22%3E",
])
def test_harmless_odd_queries_show_the_page(alice_client, runs, unchanged, query):
    with unchanged():
        response = alice_client.get("/" + query)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and "<b>x</b>" not in html


@pytest.mark.parametrize("query", ["?teacher=%00", "?teacher=%C2%B2", "?clone=%00", "?clone=%C2%B2",
                                   "?clone=99999999999999999999", "?dataset=" + "9" * 30])
def test_the_new_experiment_page_ignores_unusable_preselections(alice_client, checkpoint, dataset, unchanged, query):
    with unchanged():
        response = alice_client.get("/experiments/new/" + query)
    assert response.status_code in (200, 404)


@pytest.mark.parametrize("query, text", [
    ("?ids=%00", "ids"), ("?ids=1&ids=%C2%B2", "ids"), ("?ids=" + "9" * 40, "ids"),
])
def test_compare_refuses_ids_it_cannot_use(alice_client, runs, unchanged, query, text):
    with unchanged():
        response = alice_client.get("/compare/" + query)
    assert response.status_code in (400, 404)


@pytest.mark.parametrize("query", [
    {"from": HUGE}, {"to": "-1"}, {"after": "1e5"}, {"points": "☃"}, {"from": 5, "to": 4}, {"key": ["k"] * 60},
    {"key": "a\x00b"}, {"after": "\x00"}, {"points": "²"},
])
@pytest.mark.parametrize("client_name, url", [("api", "/api/experiments/{}/metrics/"),
                                              ("alice_client", "/experiments/{}/metrics.json")])
def test_hostile_metric_parameters_are_refused(request, experiment, unchanged, client_name, url, query):
    client = request.getfixturevalue(client_name)
    with unchanged():
        response = client.get(url.format(experiment.pk), query)
    assert response.status_code == 400 and response.json()["error"]


def test_a_unicode_metric_key_is_just_absent(api, experiment):
    body = api.get(f"/api/experiments/{experiment.pk}/metrics/", {"key": "损失/<b>"}).json()
    assert body["series"] == {}


@pytest.mark.parametrize("url", ["/api/experiments/", "/api/datasets/", "/api/checkpoints/"])
@pytest.mark.parametrize("query, text", [
    ({"limit": -1}, "limit must be between"), ({"limit": HUGE}, "limit must be an integer"),
    ({"offset": "abc"}, "offset must be an integer"), ({"limit": "1e3"}, "limit must be an integer"),
    ({"limit": "²"}, "limit must be an integer"), ({"offset": "\x00"}, "offset must be an integer"),
])
def test_bad_paging_is_refused(api, unchanged, url, query, text):
    with unchanged():
        response = api.get(url, query)
    assert_json_refused(response, 400, text, field=next(iter(query)))


@pytest.mark.parametrize("status", ["<script>", "\x00", "queued\x00"])
def test_an_unknown_status_filter_is_refused(api, unchanged, status):
    with unchanged():
        response = api.get("/api/experiments/", {"status": status})
    assert_json_refused(response, 400, "status must be one of", field="status")


@pytest.mark.parametrize("suffix", ["", "metrics/", "results/", "cancel/"])
@pytest.mark.parametrize("pk", [HUGE, 2**63, 0])
def test_ids_out_of_range_are_not_found(api, unchanged, suffix, pk):
    method = api.post if suffix == "cancel/" else api.get
    with unchanged():
        response = method(f"/api/experiments/{pk}/{suffix}")
    assert_json_refused(response, 404, "Not found")


@pytest.mark.parametrize("url", ["/api/datasets/{}/", "/api/checkpoints/{}/"])
def test_registry_ids_out_of_range_are_not_found(api, unchanged, url):
    with unchanged():
        assert_json_refused(api.get(url.format(HUGE)), 404, "Not found")
