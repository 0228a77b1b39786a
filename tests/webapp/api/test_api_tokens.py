"""API tokens: issued on the tokens page (shown once, stored hashed), revoked there, checked on every call."""

from __future__ import annotations

import re

from webapp.api.models import ApiToken, hash_token


def test_the_user_menu_links_to_the_tokens_page(alice_client):
    assert 'href="/accounts/tokens/"' in alice_client.get("/").content.decode()


def test_creating_a_token_shows_the_secret_once_and_stores_only_its_hash(alice_client, alice):
    response = alice_client.post("/accounts/tokens/", {"name": "sweep script"})
    html = response.content.decode()
    secret = re.search(r'id="token-secret">([^<]+)<', html).group(1)
    token = ApiToken.objects.get(user=alice)
    assert token.token_hash == hash_token(secret) and secret not in (token.prefix, token.token_hash)
    assert secret.startswith(token.prefix) and response["Cache-Control"] == "no-store"
    assert secret not in alice_client.get("/accounts/tokens/").content.decode()


def test_a_token_authenticates_api_calls_until_it_is_revoked(alice_client, client, alice):
    token, secret = ApiToken.issue(alice, "script")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/experiments/", **headers).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    alice_client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert client.get("/api/experiments/", **headers).status_code == 401


def test_another_users_token_cannot_be_revoked(charlie_client, alice):
    token, _ = ApiToken.issue(alice, "mine")
    assert charlie_client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_a_token_name_is_escaped(alice_client):
    alice_client.post("/accounts/tokens/", {"name": "<script>alert(1)</script>"})
    html = alice_client.get("/accounts/tokens/").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_calls_without_a_valid_token_are_401_json(client, alice):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": "Basic abc"},
                    {"HTTP_AUTHORIZATION": "Bearer " + "x" * 10_000}, {"HTTP_AUTHORIZATION": "Bearer ☃"}):
        response = client.get("/api/experiments/", **headers)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in response.json()["error"] and response.json()["fields"] == {}


def test_a_session_cookie_does_not_authenticate_the_api(alice_client):
    assert alice_client.get("/api/experiments/").status_code == 401


def test_an_inactive_users_token_is_refused(client, alice):
    _, secret = ApiToken.issue(alice, "script")
    alice.is_active = False
    alice.save()
    assert client.get("/api/experiments/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_admin_can_issue_a_token_and_sees_the_secret_once(client, alice):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests")
    client.force_login(admin)
    response = client.post("/admin/api/apitoken/add/", {"user": alice.pk, "name": "from admin"}, follow=True)
    secret = re.search(r"(dst_[A-Za-z0-9_-]{20,})", response.content.decode()).group(1)
    assert ApiToken.objects.get(name="from admin").token_hash == hash_token(secret)
