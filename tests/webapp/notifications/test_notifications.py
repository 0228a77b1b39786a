"""Issue #18 part 4: e-mail (locmem backend) and signed webhooks (a receiver on 127.0.0.1) when runs and
sweeps end; once per event, retried with backoff on a failing receiver; the settings page and its test sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from webapp.experiments.models import Experiment, Tag
from webapp.gpuqueue import queue
from webapp.notifications import events, send
from webapp.notifications.models import Delivery, NotificationSettings, Webhook
from workers import notify_tasks

S = Experiment.Status
ENQUEUE = events.enqueue  # the real one (the autouse fixture below runs deliveries in-process instead)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and fails the first `failures` of them."""

    def __init__(self, failures: int = 0):
        self.requests: list[dict] = []
        self.failures = failures
        self.redirect_to = ""  # answer every POST with a 302 there
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                failing = len(outer.requests) <= outer.failures
                self.send_response(302 if outer.redirect_to else 503 if failing else 200)
                if outer.redirect_to:
                    self.send_header("Location", outer.redirect_to)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(failures: int = 0) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_deliveries_go_to_the_registered_task_on_the_housekeeping_queue(monkeypatch):
    from workers import dispatch

    sent = []
    monkeypatch.setattr(dispatch, "send_housekeeping", lambda name, *args: sent.append((name, args)))
    ENQUEUE(5)
    assert sent == [("workers.notify_tasks.deliver", (5,))]
    assert dispatch.task("workers.notify_tasks.deliver").name == notify_tasks.deliver.name


@pytest.fixture(autouse=True)
def _eager(settings, monkeypatch, wake):
    """Mail to the locmem outbox; the delivery task run in-process (retries too, without waiting); the test
    receivers listen on 127.0.0.1, a private address."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setattr(events, "enqueue", lambda pk: notify_tasks.deliver.apply(args=[pk]))


def end(experiment, status, capture):
    """Finish a run through the queue as a worker does, running the after-commit notifications."""
    with capture(execute=True):
        assert queue.finish(experiment.pk, status, error="boom" if status == S.FAILED else "")


def subscribe(user, **fields) -> NotificationSettings:
    return NotificationSettings.objects.update_or_create(user=user, defaults=fields)[0]


def test_the_owner_gets_an_email_when_a_run_succeeds(alice, make_experiment, django_capture_on_commit_callbacks):
    alice.email = "alice@example.org"
    alice.save()
    subscribe(alice, email=True)
    run = make_experiment(S.RUNNING, name="tiny run")
    end(run, S.SUCCEEDED, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.org"]
    assert f"“tiny run” (#{run.pk}) succeeded" in message.subject and f"/experiments/{run.pk}/" in message.body
    row = Delivery.objects.get()
    assert (row.target, row.subject, row.event, row.status) == (f"email:{alice.pk}", f"experiment:{run.pk}",
                                                                 "succeeded", "delivered")


def test_a_webhook_gets_signed_slack_compatible_json(alice, make_experiment, receiver,
                                                    django_capture_on_commit_callbacks):
    r = receiver()
    subscribe(alice)
    hook = Webhook.objects.create(user=alice, url=r.url)
    run = make_experiment(S.RUNNING, name="hooked")
    end(run, S.FAILED, django_capture_on_commit_callbacks)
    assert len(r.requests) == 1
    got = r.requests[0]
    expected = "sha256=" + hmac.new(hook.secret.encode(), got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Distillery-Signature"] == expected
    assert got["headers"]["X-Distillery-Event"] == "experiment.failed"
    payload = json.loads(got["body"])
    assert payload["text"].startswith(f"Experiment “hooked” (#{run.pk}) failed: boom")
    assert payload["experiment"] == {"id": run.pk, "name": "hooked", "status": "FAILED", "team": "Acme",
                                     "path": f"/experiments/{run.pk}/"}


def test_each_event_is_sent_once(alice, make_experiment, receiver, django_capture_on_commit_callbacks):
    r = receiver()
    subscribe(alice, on_cancelled=True)
    Webhook.objects.create(user=alice, url=r.url)
    run = make_experiment(S.RUNNING)
    end(run, S.CANCELLED, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        events.run_ended(run.pk, S.CANCELLED)  # a repeated end (recovery, a retried finish)
    notify_tasks.deliver.apply(args=[Delivery.objects.get().pk])  # the broker hands the task out twice
    assert len(r.requests) == 1 and Delivery.objects.count() == 1


def test_a_failing_receiver_is_retried_until_it_answers(alice, make_experiment, receiver,
                                                       django_capture_on_commit_callbacks):
    r = receiver(failures=2)
    subscribe(alice)
    Webhook.objects.create(user=alice, url=r.url)
    end(make_experiment(S.RUNNING), S.SUCCEEDED, django_capture_on_commit_callbacks)
    row = Delivery.objects.get()
    assert len(r.requests) == 3 and (row.status, row.attempts, row.last_error) == ("delivered", 3, "")
    assert len({req["body"] for req in r.requests}) == 1  # the same message each time


def test_a_receiver_that_never_answers_ends_failed(alice, make_experiment, receiver, monkeypatch,
                                                  django_capture_on_commit_callbacks):
    r = receiver(failures=100)
    monkeypatch.setattr(notify_tasks.deliver, "max_retries", 2)
    waits = []
    real_backoff = notify_tasks.backoff
    monkeypatch.setattr(notify_tasks, "backoff", lambda n, base: waits.append(real_backoff(n, base)) or waits[-1])
    subscribe(alice)
    Webhook.objects.create(user=alice, url=r.url)
    end(make_experiment(S.RUNNING), S.SUCCEEDED, django_capture_on_commit_callbacks)
    row = Delivery.objects.get()
    assert len(r.requests) == 3 and (row.status, row.attempts) == ("failed", 3)
    assert "HTTP 503" in row.last_error
    assert waits == [30.0, 60.0]  # the countdowns the two retries were scheduled with (settings: 30 s base)


def test_backoff_doubles_and_is_capped():
    assert [notify_tasks.backoff(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert notify_tasks.backoff(20, 30) == 3600


def test_team_scope_and_event_choices_pick_the_recipients(alice, bob, charlie, make_experiment,
                                                          django_capture_on_commit_callbacks):
    for user in (alice, bob, charlie):
        user.email = f"{user.username}@example.org"
        user.save()
    subscribe(bob, email=True, scope="team")  # hears about alice's runs
    subscribe(charlie, email=True, scope="team")  # another team: never
    subscribe(alice, email=True, on_failed=False)  # her own runs, but not failures
    end(make_experiment(S.RUNNING), S.FAILED, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["bob@example.org"]]
    end(make_experiment(S.RUNNING), S.CANCELLED, django_capture_on_commit_callbacks)  # nobody asked for cancels
    assert len(mail.outbox) == 1


def test_a_sweep_is_announced_once_when_its_last_run_ends(alice, acme, make_experiment, receiver,
                                                          django_capture_on_commit_callbacks):
    r = receiver()
    subscribe(alice, on_succeeded=False, on_failed=False)
    Webhook.objects.create(user=alice, url=r.url)
    runs = [make_experiment(S.RUNNING, name=f"sweep run {i}") for i in range(2)]
    tag = Tag.objects.create(team=acme, name="sweep-7")
    tag.experiments.add(*runs)
    end(runs[0], S.SUCCEEDED, django_capture_on_commit_callbacks)
    assert r.requests == []
    end(runs[1], S.FAILED, django_capture_on_commit_callbacks)
    assert len(r.requests) == 1
    payload = json.loads(r.requests[0]["body"])
    assert payload["event"] == "sweep.finished" and payload["sweep"]["counts"] == {"succeeded": 1, "failed": 1}
    with django_capture_on_commit_callbacks(execute=True):
        events.run_ended(runs[1].pk, S.FAILED)
    assert len(r.requests) == 1


def test_the_settings_page_saves_choices_and_webhooks(alice_client, alice):
    assert alice_client.get("/notifications/").status_code == 200
    response = alice_client.post("/notifications/", {"email": "on", "scope": "team", "on_failed": "on"})
    assert response.status_code == 302
    saved = NotificationSettings.objects.get(user=alice)
    assert (saved.email, saved.scope, saved.on_succeeded, saved.on_failed) == (True, "team", False, True)
    alice_client.post("/notifications/webhooks/", {"url": "ftp://example.org/x"})
    assert not Webhook.objects.exists()
    alice_client.post("/notifications/webhooks/", {"url": "http://127.0.0.1:9/hook"})
    hook = Webhook.objects.get(user=alice)
    assert len(hook.secret) == 64 and hook.secret in alice_client.get("/notifications/").content.decode()
    alice_client.post(f"/notifications/webhooks/{hook.pk}/delete/")
    assert not Webhook.objects.exists()


def test_test_sends_reach_the_mailbox_and_the_receiver(alice_client, alice, receiver):
    alice.email = "alice@example.org"
    alice.save()
    alice_client.post("/notifications/test/")
    assert mail.outbox[0].to == ["alice@example.org"] and "Test notification" in mail.outbox[0].body
    r = receiver()
    hook = Webhook.objects.create(user=alice, url=r.url)
    response = alice_client.post("/notifications/test/", {"hook": str(hook.pk)}, follow=True)
    assert len(r.requests) == 1 and json.loads(r.requests[0]["body"])["event"] == "test"
    assert "Test sent to" in response.content.decode()
    dead = Webhook.objects.create(user=alice, url="http://127.0.0.1:9/nothing-listens")
    response = alice_client.post("/notifications/test/", {"hook": str(dead.pk)}, follow=True)
    assert "The test did not go out" in response.content.decode()


def test_nobody_can_use_or_delete_another_persons_webhook(charlie_client, alice, receiver):
    r = receiver()
    hook = Webhook.objects.create(user=alice, url=r.url)
    assert charlie_client.post("/notifications/test/", {"hook": str(hook.pk)}).status_code == 404
    assert charlie_client.post(f"/notifications/webhooks/{hook.pk}/delete/").status_code == 404
    assert r.requests == [] and Webhook.objects.filter(pk=hook.pk).exists()
    assert hook.secret not in charlie_client.get("/notifications/").content.decode()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]/x",
                                 "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x", "https://192.168.0.5/x"])
def test_a_webhook_cannot_aim_the_server_at_private_addresses(alice_client, alice, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = alice_client.post("/notifications/webhooks/", {"url": url}, follow=True)
    assert not Webhook.objects.exists()
    assert "private, loopback or reserved" in response.content.decode()
    with pytest.raises(send.SendError, match="private, loopback or reserved"):
        send.post_webhook(url, "secret", {"text": "x", "event": "test"})


def test_a_public_address_passes_the_check_without_a_request(settings):
    from webapp.notifications import addresses

    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert addresses.problem("https://93.184.216.34/hook") is None
    assert "does not resolve" in addresses.problem("https://no-such-host.invalid/hook")


def test_a_webhook_redirect_is_not_followed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # both servers are on 127.0.0.1
    inner, outer = Receiver(), Receiver()
    outer.redirect_to = inner.url
    try:
        with pytest.raises(send.SendError, match="HTTP 302"):
            send.post_webhook(outer.url, "secret", {"text": "x", "event": "test"})
        assert inner.requests == []
    finally:
        inner.close()
        outer.close()
