"""The experiments list: filters, sort order, pages that keep the filters, score columns, scale."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.webapp.factories import sample_results
from webapp.experiments.annotations import annotate
from webapp.experiments.models import Experiment
from webapp.registry.models import Checkpoint, Dataset

S = Experiment.Status


def names(client, query: str = "") -> list[str]:
    response = client.get("/" + query)
    assert response.status_code == 200
    return re.findall(r'<a href="/experiments/\d+/">([^<]*)</a>', response.content.decode())


def with_results(acc: float) -> dict:
    results = sample_results()
    results["student"]["accuracy"] = acc
    return results


@pytest.fixture
def three(make_experiment):
    a = make_experiment(S.SUCCEEDED, name="alpha", best={"dev/accuracy": 0.70}, results=with_results(0.60),
                        notes="first try with a low temperature")
    b = make_experiment(S.FAILED, name="bravo", best={"dev/accuracy": 0.90})
    c = make_experiment(S.RUNNING, name="charlie run", best={"dev/accuracy": 0.80}, latest={"train/loss": 0.25})
    return a, b, c


def test_the_newest_experiment_comes_first(alice_client, three):
    assert names(alice_client) == ["charlie run", "bravo", "alpha"]


@pytest.mark.parametrize("sort, expected", [
    ("name", ["alpha", "bravo", "charlie run"]),
    ("-name", ["charlie run", "bravo", "alpha"]),
    ("created", ["alpha", "bravo", "charlie run"]),
    ("-best_dev", ["bravo", "charlie run", "alpha"]),
    ("best_dev", ["alpha", "charlie run", "bravo"]),
    ("-test", ["alpha", "charlie run", "bravo"]),  # runs without results go last either way
    ("test", ["alpha", "charlie run", "bravo"]),
    ("status", ["bravo", "charlie run", "alpha"]),
])
def test_it_sorts_by_any_column(alice_client, three, sort, expected):
    assert names(alice_client, f"?sort={sort}") == expected


def test_a_column_header_flips_the_direction_of_the_current_sort(alice_client, three):
    html = alice_client.get("/?sort=name").content.decode()
    assert 'href="?sort=-name"' in html and 'aria-sort="ascending"' in html


def test_it_filters_by_status_and_free_text_over_names_and_notes(alice_client, three):
    assert names(alice_client, "?status=FAILED") == ["bravo"]
    assert names(alice_client, "?status=failed") == ["bravo"]
    assert names(alice_client, "?q=RUN") == ["charlie run"]
    assert names(alice_client, "?q=low+temperature") == ["alpha"]


def test_it_filters_by_teacher_dataset_student_owner_and_tag(alice_client, three, bob, acme, checkpoint, dataset):
    a, b, c = three
    other_teacher = Checkpoint.objects.create(team=acme, name="big-bert", path=checkpoint.path, info=checkpoint.info)
    other_data = Dataset.objects.create(team=acme, name="reviews", train_path=dataset.train_path, labels=dataset.labels)
    Experiment.objects.filter(pk=b.pk).update(teacher=other_teacher, dataset=other_data, student_type="bilstm",
                                              owner=bob)
    annotate(a, tags=["baseline"])
    annotate(c, tags=["baseline", "t4"])
    assert names(alice_client, f"?teacher={other_teacher.pk}") == ["bravo"]
    assert names(alice_client, f"?dataset={other_data.pk}") == ["bravo"]
    assert names(alice_client, "?student=bilstm") == ["bravo"]
    assert names(alice_client, f"?owner={bob.pk}") == ["bravo"]
    assert names(alice_client, "?tag=baseline") == ["charlie run", "alpha"]
    assert names(alice_client, "?tag=baseline&q=alpha") == ["alpha"]
    assert names(alice_client, "?tag=nothing") == []


def test_it_shows_best_and_latest_metrics_tags_and_notes(alice_client, three):
    a, _, c = three
    annotate(a, tags=["baseline"])
    html = alice_client.get("/").content.decode()
    assert "70.0%" in html and "60.0%" in html  # alpha: best dev, test accuracy
    assert "0.250" in html  # charlie run: latest train loss
    assert 'class="tag" href="?tag=baseline">baseline<' in html
    assert "first try with a low temperature" in html


def test_pages_hold_fifty_and_their_links_keep_the_filters(alice_client, make_experiment):
    for i in range(55):
        make_experiment(S.QUEUED, name=f"run {i:02d}")
    make_experiment(S.FAILED, name="odd one")
    first = alice_client.get("/?status=QUEUED&sort=name").content.decode()
    assert len(re.findall(r'name="ids"', first)) == 50
    assert 'href="?status=QUEUED&amp;sort=name&amp;page=2"' in first
    second = names(alice_client, "?status=QUEUED&sort=name&page=2")
    assert second == [f"run {i:02d}" for i in range(50, 55)]


def test_another_teams_experiments_never_appear(charlie_client, three, other):
    assert names(charlie_client) == []
    html = charlie_client.get("/?q=low").content.decode()
    assert "low temperature" not in html and "tiny-bert" not in html and "No experiment matches" in html


def test_a_malformed_filter_is_dropped_with_a_note(alice_client, three):
    # More hostile query strings: tests/webapp/hostile/test_query_strings.py.
    response = alice_client.get("/?teacher=abc&sort=bogus")
    html = response.content.decode()
    assert response.status_code == 400
    assert "Ignored the teacher filter" in html and "Ignored the sort order" in html


def test_the_page_reads_neither_configs_nor_full_results(alice_client, make_experiment):
    for i in range(60):
        make_experiment(S.SUCCEEDED, name=f"run {i}", results=sample_results(), best={"dev/accuracy": 0.5})
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get("/?sort=-test")
    assert response.status_code == 200
    main = [q["sql"] for q in queries if 'FROM "experiments_experiment"' in q["sql"]
            and '"experiments_experiment"."name"' in q["sql"]]
    assert main, [q["sql"] for q in queries]
    for sql in main:
        # As a selected column (not inside JSON_EXTRACT(...), which reads one number in the database).
        for column in ("config", "results", "latest", "best"):
            assert not re.search(rf'(SELECT |, )"experiments_experiment"\."{column}"(,| FROM)', sql), column
    # A constant number of queries, whatever the page size: no per-row lookups.
    assert len(queries) <= 12, [q["sql"] for q in queries]


def test_the_list_offers_compare_checkboxes(alice_client, three):
    html = alice_client.get("/").content.decode()
    assert 'id="compare-form"' in html and 'action="/compare/"' in html
    assert html.count('type="checkbox" name="ids"') == 3
    assert "/static/js/list.js" in html
