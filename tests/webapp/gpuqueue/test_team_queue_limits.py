"""Staff-set queue limits per team: a priority ceiling and the pools members may use (page, API, admin)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from tests.webapp.factories import PASSWORD
from webapp.accounts.admin import TeamAdminForm
from webapp.accounts.models import Membership
from webapp.experiments.models import Experiment

URL = "/experiments/new/"
API = "/api/experiments/"


@pytest.fixture
def limited(acme):
    acme.max_priority = 10
    acme.allowed_pools = ["default", "a100"]
    acme.save()
    return acme


@pytest.fixture
def form_data(acme, checkpoint, dataset):
    return {"name": "limited", "team": acme.pk, "teacher": checkpoint.pk, "dataset": dataset.pk,
            "student_type": "textcnn", "temperature": "2.0", "alpha": "0.8", "epochs": "1", "batch_size": "8",
            "learning_rate": "0.001", "max_length": "16"}


def _api_post(api, body: dict):
    return api.post(API, json.dumps(body), content_type="application/json")


def _errors(response, field: str) -> list[str]:
    assert response.status_code == 400
    return response.context["form"].errors.get(field, [])


def test_the_form_refuses_a_priority_above_the_teams_ceiling(alice_client, limited, form_data, wake):
    response = alice_client.post(URL, {**form_data, "priority": "11"})
    assert _errors(response, "priority") == ["Acme may queue at priority 10 at most; ask staff to raise the ceiling "
                                             "or to move the experiment up the queue."]
    assert Experiment.objects.count() == 0


def test_the_form_refuses_a_pool_the_team_may_not_use(alice_client, limited, form_data, wake):
    response = alice_client.post(URL, {**form_data, "pool": "h100"})
    assert _errors(response, "pool") == ["Acme may not use the pool 'h100'; choose 'default' or 'a100'."]
    assert Experiment.objects.count() == 0


def test_the_form_queues_at_the_ceiling_in_an_allowed_pool(alice_client, limited, form_data, wake):
    response = alice_client.post(URL, {**form_data, "priority": "10", "pool": "a100"})
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert (experiment.priority, experiment.pool) == (10, "a100")
    assert wake == ["a100"]


def test_a_blank_pool_is_checked_as_the_default_pool(alice_client, acme, form_data, wake):
    acme.allowed_pools = ["a100"]
    acme.save()
    response = alice_client.post(URL, {**form_data, "pool": ""})
    assert _errors(response, "pool") == ["Acme may not use the pool 'default'; choose 'a100'."]


def test_a_blank_priority_is_checked_as_zero_under_a_negative_ceiling(alice_client, acme, form_data, wake):
    acme.max_priority = -5
    acme.save()
    response = alice_client.post(URL, {**form_data, "priority": ""})
    assert "at priority -5 at most" in _errors(response, "priority")[0]


def test_the_page_shows_the_limits_and_starts_inside_them(alice_client, acme, checkpoint, dataset):
    acme.max_priority = -5
    acme.allowed_pools = ["a100"]
    acme.save()
    response = alice_client.get(URL)
    form = response.context["form"]
    assert form["priority"].value() == -5 and form["pool"].value() == "a100"
    assert b'max="-5"' in response.content
    assert b"Acme may use up to -5." in response.content and b"Acme may use: a100." in response.content


def test_staff_are_not_bound_by_the_limits(client, limited, form_data, wake):
    staff = get_user_model().objects.create_user("sam", password=PASSWORD, is_staff=True)
    Membership.objects.create(team=limited, user=staff)
    client.force_login(staff)
    response = client.post(URL, {**form_data, "priority": "500", "pool": "h100"})
    assert response.status_code == 302
    assert Experiment.objects.get().priority == 500


def test_a_team_without_limits_may_use_any_pool_and_priority(alice_client, acme, form_data, wake):
    response = alice_client.post(URL, {**form_data, "priority": "1000", "pool": "h100"})
    assert response.status_code == 302 and Experiment.objects.get().pool == "h100"


def test_the_api_refuses_a_priority_above_the_ceiling_on_its_field(api, limited, checkpoint, dataset, wake):
    response = _api_post(api, {"name": "x", "teacher": checkpoint.pk, "dataset": dataset.pk, "priority": 50})
    assert response.status_code == 400
    assert response.json()["fields"] == {"priority": ["Acme may queue at priority 10 at most; ask staff to raise "
                                                      "the ceiling or to move the experiment up the queue."]}
    assert Experiment.objects.count() == 0 and wake == []


def test_the_api_refuses_a_pool_the_team_may_not_use_on_its_field(api, limited, checkpoint, dataset, wake):
    response = _api_post(api, {"name": "x", "teacher": checkpoint.pk, "dataset": dataset.pk, "pool": "h100"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"pool": ["Acme may not use the pool 'h100'; choose 'default' or 'a100'."]}
    assert Experiment.objects.count() == 0


def test_the_api_queues_within_the_limits(api, limited, checkpoint, dataset, wake):
    response = _api_post(api, {"name": "x", "teacher": checkpoint.pk, "dataset": dataset.pk, "priority": 10,
                               "pool": "a100"})
    assert response.status_code == 201, response.json()
    assert (response.json()["priority"], response.json()["pool"]) == (10, "a100")


def test_a_sweep_is_refused_as_a_whole(api, limited, checkpoint, dataset, wake):
    response = _api_post(api, {"name": "s", "teacher": checkpoint.pk, "dataset": dataset.pk, "priority": 11,
                               "sweep_temperature": "1, 2"})
    assert response.status_code == 400 and "priority" in response.json()["fields"]
    assert Experiment.objects.count() == 0


def test_staff_set_the_pools_as_a_comma_separated_list(acme):
    data = {"name": acme.name, "slug": acme.slug, "max_running": 0, "max_priority": 5,
            "allowed_pools": " default, a100 ,"}
    form = TeamAdminForm(data, instance=acme)
    assert form.is_valid(), form.errors
    form.save()
    acme.refresh_from_db()
    assert acme.allowed_pools == ["default", "a100"] and acme.max_priority == 5
    assert TeamAdminForm(instance=acme)["allowed_pools"].value() == "default, a100"


@pytest.mark.parametrize(("pools", "message"), [("A100", "lower-case letters"), ("a100, a100", "listed twice")])
def test_the_admin_refuses_bad_pool_lists(acme, pools, message):
    form = TeamAdminForm({"name": acme.name, "slug": acme.slug, "max_running": 0, "allowed_pools": pools},
                         instance=acme)
    assert not form.is_valid() and message in str(form.errors["allowed_pools"])


def test_the_admin_refuses_a_ceiling_out_of_range(acme):
    form = TeamAdminForm({"name": acme.name, "slug": acme.slug, "max_running": 0, "max_priority": 5000},
                         instance=acme)
    assert not form.is_valid() and "max_priority" in form.errors


def test_the_admin_team_page_edits_the_limits(client, acme):
    admin = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client.force_login(admin)
    page = client.get(f"/admin/accounts/team/{acme.pk}/change/")
    assert page.status_code == 200
    assert b'name="max_priority"' in page.content and b'name="allowed_pools"' in page.content
