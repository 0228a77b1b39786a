"""Sign-in throttling (django-axes): per username and per address, on both sign-in pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.webapp.factories import PASSWORD

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
HERE = "10.0.0.1"
ELSEWHERE = "10.0.0.2"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("sam", password=PASSWORD, is_staff=True)


def _post(client, url: str, username: str, password: str, address: str = HERE, **extra):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def _fail(client, url: str, username: str, times: int, address: str = HERE, limit: int = 5) -> None:
    """Post `times` wrong passwords; the one that reaches the limit already answers the lockout."""
    for attempt in range(1, times + 1):
        response = _post(client, url, username, f"wrong-{attempt}", address)
        expected = 429 if attempt >= limit else 200
        assert response.status_code == expected, f"wrong password {attempt} answered {response.status_code}"
        assert "_auth_user_id" not in client.session


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_sixth_attempt_on_the_login_page_is_refused_with_429(client, alice):
    _fail(client, LOGIN, "alice", 5)
    response = _post(client, LOGIN, "alice", "wrong-6")
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content and b"15 minutes" in response.content
    assert b"login-card" in response.content  # our page, not axes' bare text
    assert response["Retry-After"] == "900"


def test_the_right_password_is_refused_while_locked_out(client, alice):
    _fail(client, LOGIN, "alice", 5)
    response = _post(client, LOGIN, "alice", PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)


def test_the_admin_login_page_locks_out_too(client, staff):
    _fail(client, ADMIN_LOGIN, "sam", 5)
    response = _post(client, ADMIN_LOGIN, "sam", PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)


def test_failures_on_one_login_page_count_on_the_other(client, staff):
    _fail(client, LOGIN, "sam", 5)
    assert _post(client, ADMIN_LOGIN, "sam", PASSWORD).status_code == 429


def test_another_user_at_another_address_is_unaffected(client, alice, bob):
    _fail(client, LOGIN, "alice", 5, HERE)
    response = _post(client, LOGIN, "bob", PASSWORD, ELSEWHERE)
    assert response.status_code == 302 and _signed_in(client)


def test_a_locked_user_is_locked_from_every_address(client, alice):
    _fail(client, LOGIN, "alice", 5, HERE)
    assert _post(client, LOGIN, "alice", PASSWORD, ELSEWHERE).status_code == 429


def test_a_locked_address_is_locked_for_every_user(client, alice, bob):
    for number, username in enumerate(("alice", "bob", "nobody", "root", "admin"), 1):  # password spraying
        assert _post(client, LOGIN, username, "guess", HERE).status_code == (429 if number == 5 else 200)
    assert _post(client, LOGIN, "bob", PASSWORD, HERE).status_code == 429
    assert _post(client, LOGIN, "bob", PASSWORD, ELSEWHERE).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice):
    _fail(client, LOGIN, "alice", 5)
    assert _post(client, LOGIN, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = _post(client, LOGIN, "alice", PASSWORD)
    assert response.status_code == 302 and _signed_in(client)


def test_the_limit_and_cool_off_come_from_the_settings(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    _fail(client, LOGIN, "alice", 2, limit=2)
    response = _post(client, LOGIN, "alice", PASSWORD)
    assert response.status_code == 429 and b"1 minute," in response.content
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=2))
    assert _post(client, LOGIN, "alice", PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_count(client, alice):
    _fail(client, LOGIN, "alice", 4)
    assert _post(client, LOGIN, "alice", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    _fail(client, LOGIN, "alice", 4)
    assert _post(client, LOGIN, "alice", PASSWORD).status_code == 302


def test_a_json_client_gets_the_api_error_shape(client, alice):
    _fail(client, LOGIN, "alice", 5)
    response = _post(client, LOGIN, "alice", PASSWORD, HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    body = response.json()
    assert body["fields"] == {} and "Too many failed sign-ins" in body["error"]
    assert response["Retry-After"] == "900"


def test_behind_the_proxy_each_forwarded_address_counts_alone(client, alice, bob, settings):
    settings.BEHIND_TLS_PROXY = True
    proxy = {"REMOTE_ADDR": "172.18.0.5"}
    for attempt in range(5):
        client.post(LOGIN, {"username": f"user{attempt}", "password": "x"}, HTTP_X_FORWARDED_FOR="203.0.113.7",
                    **proxy)
    spoofed_then_real = "198.51.100.1, 203.0.113.7"  # the client cannot pick its address by prepending one
    assert client.post(LOGIN, {"username": "bob", "password": PASSWORD}, HTTP_X_FORWARDED_FOR=spoofed_then_real,
                       **proxy).status_code == 429
    response = client.post(LOGIN, {"username": "bob", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.8",
                           **proxy)
    assert response.status_code == 302


@pytest.mark.parametrize("forwarded", ["", "not-an-address", "203.0.113.7, <script>", "1" * 500])
def test_a_malformed_forwarded_address_falls_back_to_the_peer(client, alice, settings, forwarded):
    settings.BEHIND_TLS_PROXY = True
    response = client.post(LOGIN, {"username": "alice", "password": "x"}, HTTP_X_FORWARDED_FOR=forwarded,
                           REMOTE_ADDR="172.18.0.5")
    assert response.status_code == 200
    assert AccessAttempt.objects.get().ip_address == "172.18.0.5"


def test_a_session_opened_without_an_address_is_logged_without_one(client, alice):
    client.force_login(alice)  # Django's test login builds a request with no REMOTE_ADDR
    assert client.get("/").status_code == 200
