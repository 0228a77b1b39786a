"""/compare/?ids=…: ids parsing, config diff, Pareto front, the page and its access rules."""

from __future__ import annotations

import json

import pytest

from tests.webapp.factories import sample_results
from webapp.experiments.compare import IdsError, config_diff, flatten, pareto_front, parse_ids
from webapp.experiments.models import Experiment

S = Experiment.Status


# --- pure functions ---------------------------------------------------------------------------

def test_ids_are_read_from_commas_and_repeated_parameters():
    assert parse_ids("3,7, 9") == [3, 7, 9]
    assert parse_ids(["3", "7,3", "9"]) == [3, 7, 9]


@pytest.mark.parametrize("raw, words", [
    ("", "at least two"), ("5", "at least two"), ("5,5", "at least two"), ("1,-2", "'-2' is not"),
    ("1,abc", "'abc' is not"), ("1,2.5", "'2.5' is not"), ("1,0", "'0' is not"), ("1,١٢", "is not"),
    ("1,99999999999999999999", "is not"), (",".join(str(i) for i in range(1, 20)), "at most 12"),
])
def test_bad_ids_raise_a_message(raw, words):
    with pytest.raises(IdsError, match=words):
        parse_ids(raw)


def test_flatten_makes_dotted_keys_and_keeps_lists_whole():
    assert flatten({"kd": {"alpha": 0.5, "t2": True}, "labels": ["a", "b"], "opts": {}, "n": None}) == {
        "kd.alpha": 0.5, "kd.t2": True, "labels": ["a", "b"], "opts": {}, "n": None}


def test_the_config_diff_lists_only_keys_that_differ():
    a = {"name": "a", "kd": {"alpha": 0.5, "temperature": 2.0}, "data": {"labels": ["x", "y"]}, "seed": 1}
    b = {"name": "b", "kd": {"alpha": 0.9, "temperature": 2.0}, "data": {"labels": ["x", "y"]}, "seed": 1,
         "student": {"vocab": "word"}}
    rows = config_diff([a, b])
    assert [r["key"] for r in rows] == ["kd.alpha", "student.vocab"]
    assert rows[0]["values"] == ["0.5", "0.9"]
    assert rows[1]["values"] == [None, "word"] and rows[1]["missing"] == [True, False]


def test_identical_configs_have_no_diff():
    assert config_diff([{"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}]) == []


def test_1_and_1_0_and_true_are_told_apart_only_when_json_differs():
    rows = config_diff([{"x": 1, "y": True}, {"x": 1.0, "y": 1}])
    assert [r["key"] for r in rows] == ["x", "y"]  # 1 vs 1.0 and true vs 1 read differently in JSON


def test_the_pareto_front_keeps_points_no_other_beats_on_both_axes():
    #          cost, accuracy
    points = [(1.0, 0.70),   # cheapest: front
              (2.0, 0.80),   # front
              (3.0, 0.75),   # dominated by (2.0, 0.80)
              (4.0, 0.90),   # most accurate: front
              (4.0, 0.85),   # dominated by (4.0, 0.90): same cost, less accurate
              (None, 0.99),  # incomplete: never on the front
              (5.0, None)]
    assert pareto_front(points) == [True, True, False, True, False, False, False]


def test_equal_points_are_both_on_the_front():
    assert pareto_front([(1.0, 0.5), (1.0, 0.5), (2.0, 0.4)]) == [True, True, False]


def test_an_empty_or_single_point_set():
    assert pareto_front([]) == []
    assert pareto_front([(3.0, 0.1)]) == [True]


# --- the page ------------------------------------------------------------------------------

def results_with(acc: float, size: int, latency: float) -> dict:
    results = sample_results()
    results["student"]["accuracy"] = acc
    results["size"]["student"].update(bytes=size, latency_ms_b1=latency)
    return results


@pytest.fixture
def runs(make_experiment):
    small = make_experiment(S.SUCCEEDED, name="small", results=results_with(0.70, 2_000_000, 0.5))
    big = make_experiment(S.SUCCEEDED, name="big", results=results_with(0.85, 9_000_000, 2.0))
    worse = make_experiment(S.SUCCEEDED, name="worse", results=results_with(0.65, 5_000_000, 1.0))
    Experiment.objects.filter(pk=big.pk).update(config={**big.config, "kd": {**big.config["kd"], "alpha": 0.3}})
    return small, big, worse


def compare_data(html: str) -> dict:
    return json.loads(html.split('<script id="compare-data" type="application/json">')[1].split("</script>")[0])


def test_the_page_shows_results_diff_and_pareto_data(alice_client, runs):
    small, big, worse = runs
    response = alice_client.get(f"/compare/?ids={small.pk},{big.pk},{worse.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Comparing 3 experiments" in html
    for chart in ("compare-loss", "compare-dev", "scatter-size", "scatter-latency"):
        assert f'id="{chart}"' in html
    assert "<code>kd.alpha</code>" in html and "<code>0.3</code>" in html
    assert "<code>name</code>" not in html and "<code>output_dir</code>" not in html
    assert "70.0%" in html and "85.0%" in html and "2.0 MB" in html
    data = compare_data(html)
    assert data["size"]["ids"] == [small.pk, big.pk, worse.pk]
    assert data["size"]["x"] == [2.0, 9.0, 5.0] and data["size"]["y"] == [0.70, 0.85, 0.65]
    assert data["size"]["front"] == [True, True, False]
    assert data["latency"]["front"] == [True, True, False]
    assert [s["metrics_url"] for s in data["series"]] == [f"/experiments/{e.pk}/metrics.json" for e in runs]
    assert "/static/vendor/plotly.min.js" in html and "/static/js/compare.js" in html


def test_repeated_ids_parameters_work_too(alice_client, runs):
    query = "&".join(f"ids={e.pk}" for e in runs)
    assert alice_client.get(f"/compare/?{query}").status_code == 200


def test_unfinished_runs_compare_without_results(alice_client, make_experiment):
    a, b = make_experiment(S.RUNNING, name="a"), make_experiment(S.QUEUED, name="b")
    html = alice_client.get(f"/compare/?ids={a.pk},{b.pk}").content.decode()
    assert "No results yet" in html
    assert compare_data(html)["size"]["front"] == [False, False]


def test_another_teams_experiment_in_the_ids_is_404(charlie_client, runs):
    small, big, _ = runs
    assert charlie_client.get(f"/compare/?ids={small.pk},{big.pk}").status_code == 404


def test_one_foreign_id_among_own_ones_is_404(alice_client, runs, charlie, other, teacher_dir, teacher_info,
                                              dataset_files):
    from webapp.registry.models import Checkpoint, Dataset

    cp = Checkpoint.objects.create(team=other, name="theirs", path=str(teacher_dir), info=teacher_info)
    ds = Dataset.objects.create(team=other, name="theirs", train_path=str(dataset_files["train"]), labels=["a"])
    theirs = Experiment.objects.create(team=other, name="secret", teacher=cp, dataset=ds, student_type="textcnn",
                                       config={"kd": {"alpha": 0.1}}, results=sample_results())
    response = alice_client.get(f"/compare/?ids={runs[0].pk},{theirs.pk}")
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_a_missing_id_is_404(alice_client, runs):
    assert alice_client.get(f"/compare/?ids={runs[0].pk},987654").status_code == 404


@pytest.mark.parametrize("query", [
    "?ids=1", "?ids=a,b", "?ids=-1,-2", "?ids=1,99999999999999999999999999999", "?ids=%00,1",
    "?ids=%E4%B8%AD,1", "?ids=<script>alert(1)</script>,2", "?ids=" + ",".join(["1"] * 5000),
    "?ids=" + ",".join(str(i) for i in range(1, 40)),
])
def test_bad_ids_get_a_clear_message_never_a_500(alice_client, runs, query):
    response = alice_client.get("/compare/" + query)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing to compare" in html and "<script>alert" not in html


@pytest.mark.parametrize("query", ["", "?ids=", "?ids=,"])
def test_no_ids_at_all_shows_the_chooser(alice_client, runs, query):
    response = alice_client.get("/compare/" + query)
    assert response.status_code == 200
    assert {e.pk for e in response.context["choices"]} >= {r.pk for r in runs}


def test_hostile_names_and_config_values_are_escaped(alice_client, make_experiment):
    a = make_experiment(S.SUCCEEDED, name="<b>bold</b>", results=sample_results())
    b = make_experiment(S.SUCCEEDED, name="</script><script>alert(1)</script>", results=sample_results())
    Experiment.objects.filter(pk=b.pk).update(config={**b.config, "evil": "<img src=x onerror=alert(1)>"})
    html = alice_client.get(f"/compare/?ids={a.pk},{b.pk}").content.decode()
    assert "<b>bold</b>" not in html and "<img src=x" not in html and "<script>alert(1)" not in html
    assert compare_data(html)["size"]["names"] == ["<b>bold</b>", "</script><script>alert(1)</script>"]


def test_malformed_results_do_not_break_the_page(alice_client, make_experiment):
    a = make_experiment(S.SUCCEEDED, name="a", results={"student": "oops", "size": [1, 2]})
    b = make_experiment(S.SUCCEEDED, name="b", results={"student": {"accuracy": "high"}, "size": {"student": {"bytes": -5}}})
    assert alice_client.get(f"/compare/?ids={a.pk},{b.pk}").status_code == 200


def test_anonymous_users_are_sent_to_login(client, runs):
    response = client.get(f"/compare/?ids={runs[0].pk},{runs[1].pk}")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
