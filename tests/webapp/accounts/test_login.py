"""Signing in and out; every page sits behind the login."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tests.webapp.factories import PASSWORD


def test_the_login_page_renders(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content
    assert b"css/app.css" in response.content


def test_it_logs_in_and_lands_on_the_experiments(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert b"alice" in page.content


def test_it_follows_next_after_login(client, alice):
    response = client.post("/accounts/login/?next=/datasets/",
                           {"username": "alice", "password": PASSWORD, "next": "/datasets/"})
    assert response["Location"] == "/datasets/"


def test_it_refuses_a_wrong_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_it_ignores_an_offsite_next(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD,
                                                "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_logout_is_a_post_and_returns_to_login(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert alice_client.get("/").status_code == 302


def test_a_signed_in_user_skips_the_login_page(alice_client):
    assert alice_client.get("/accounts/login/")["Location"] == "/"


def test_the_admin_link_is_for_staff_only(client, alice):
    client.force_login(alice)
    assert b'href="/admin/"' not in client.get("/").content
    staff = get_user_model().objects.create_user("sam", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    assert b'href="/admin/"' in client.get("/").content


def test_a_user_without_a_team_is_told_so(client, db):
    loner = get_user_model().objects.create_user("loner", password=PASSWORD)
    client.force_login(loner)
    for url in ("/", "/experiments/new/", "/datasets/", "/checkpoints/", "/datasets/new/", "/checkpoints/new/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"not in a team yet" in response.content, url
