"""Every URL that takes an id, filled with an object of Acme, is a dead end for a member of Other.

The patterns come from Django's resolver, walked recursively, so a view added tomorrow is
tested tomorrow: a pattern with an id this module does not know how to fill fails loudly
(add it to TEAM_URLS or STAFF_URLS, with the kind of object it takes). For each pattern
charlie (team Other, not staff) sends GET and POST, with his session and, under /api/, with
his bearer token: team-owned objects answer 404, staff-only views 403, the admin site sends
him to its login, and nothing in the database changes. A control request as alice (Acme),
or as staff, proves the filled object was real, so the 404 came from the ownership check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver

from webapp.accounts.models import Membership, Team
from webapp.api.models import ApiToken
from webapp.experiments import run_files
from webapp.experiments.models import Experiment, Tag
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker
from webapp.notifications.models import Delivery, NotificationSettings, Webhook
from webapp.registry.models import Checkpoint, Dataset

TEAM, STAFF, ADMIN = "team", "staff", "admin"

# URL name -> the kind of object its id names. Team-owned: another team's member gets 404.
TEAM_URLS = {
    "experiments:detail": "experiment", "experiments:cancel": "experiment", "experiments:config": "experiment",
    "experiments:status": "experiment", "experiments:metrics": "experiment", "experiments:annotate": "experiment",
    "experiments:predict": "experiment", "experiments:generate": "experiment", "experiments:download_student": "experiment",
    "registry:checkpoint": "checkpoint", "registry:dataset": "dataset",
    "api:experiment": "experiment", "api:experiment_cancel": "experiment", "api:experiment_metrics": "experiment",
    "api:experiment_results": "experiment", "api:dataset": "dataset", "api:checkpoint": "checkpoint",
    "api:experiment_ingest": "experiment", "api:experiment_finish": "experiment", "api:experiment_student": "experiment",
    "experiments:environment": "experiment", "experiments:requirements": "experiment",
    "gpuqueue:cancel": "experiment",
    "registry:checkpoint_status": "checkpoint",
    "api_token_revoke": "token",  # a token is the user's own: another user's is 404 too
    "experiments:artifacts": "experiment", "experiments:artifact_file": "experiment",
    "experiments:run_log": "experiment", "experiments:metrics_csv": "experiment",
    "notifications:delete_webhook": "webhook",  # a person's own, like a token
}
# Arguments that are not ids get these values (a file the world's experiment has).
PARAM_VALUES = {"path": "run/run.log"}
# Staff-only: a member of any team gets 403 before the object is looked up.
STAFF_URLS = {
    "gpuqueue:top": "experiment", "gpuqueue:ahead": "experiment", "gpuqueue:priority": "experiment",
    "gpuqueue:requeue": "experiment", "gpuqueue:worker_mode": "worker", "gpuqueue:team_limit": "team",
}
# The admin site's own model pages (admin/<app>/<model>/<object_id>/...): model label -> kind.
ADMIN_MODELS = {
    "auth.user": "user", "auth.group": "group", "accounts.team": "team", "registry.checkpoint": "checkpoint",
    "registry.dataset": "dataset", "experiments.experiment": "experiment", "api.apitoken": "token",
    "gpuqueue.worker": "worker", "gpuqueue.pool": "pool",
    "axes.accessattempt": "access_attempt", "axes.accesslog": "access_log", "axes.accessfailurelog": "access_failure",
}
NOT_IDS = {"app_label", "url"}  # the admin's app index and its catch-all: names, not objects
PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")
HOSTILE_FORM = {"notes": "pwned", "tags": "pwned", "texts": "pwned", "priority": "999", "other": "1",
                "mode": "disabled", "max_running": "1", "name": "pwned"}
HOSTILE_JSON = {"notes": "pwned", "tags": ["pwned"], "texts": ["pwned"]}


@dataclass(frozen=True)
class Pattern:
    route: str  # the full route, e.g. "experiments/<int:pk>/"
    name: str  # "namespace:name", "" for unnamed admin redirects

    @property
    def params(self) -> list[str]:
        return [a or b for a, b in PARAM.findall(self.route)]

    def __str__(self) -> str:
        return self.route


def walk(patterns, prefix: str = "", namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            name = f"{namespace}:{entry.name}" if namespace else (entry.name or "")
            yield Pattern(prefix + str(entry.pattern), name if entry.name else f"{namespace}:")


def id_patterns() -> list[Pattern]:
    """Every pattern of the project with at least one argument that names an object."""
    return [p for p in walk(get_resolver().url_patterns) if set(p.params) - NOT_IDS]


PATTERNS = id_patterns()


@pytest.fixture
def world(acme, other, alice, charlie, finished_experiment, checkpoint, dataset):
    """One object of every kind, each Acme's (or staff-level), and the users to request them."""
    User = get_user_model()
    token, _ = ApiToken.issue(alice, "alice's script")
    finished_experiment.environment = {"python": "3.11.7", "packages": {"torch": "2.13.0"}}  # its downloads exist
    finished_experiment.save(update_fields=["environment"])
    log = run_files.log_path(finished_experiment.pk)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("12:00:00 INFO workers.tasks: alice's run\n")
    return {
        "experiment": finished_experiment, "checkpoint": checkpoint, "dataset": dataset, "token": token,
        "team": acme, "user": alice, "group": Group.objects.create(name="acme-admins"),
        "worker": Worker.objects.create(name="gpu0@acme-box", host="acme-box"),
        "pool": Pool.objects.create(name="acme-a100"),
        "webhook": Webhook.objects.create(user=alice, url="http://127.0.0.1:9/alice"),
        # django-axes' sign-in records (staff-only admin pages): one of each, about alice
        "access_attempt": AccessAttempt.objects.create(username="alice", ip_address="10.0.0.1", failures_since_start=1),
        "access_log": AccessLog.objects.create(username="alice", ip_address="10.0.0.1"),
        "access_failure": AccessFailureLog.objects.create(username="alice", ip_address="10.0.0.1"),
        "staff": User.objects.create_user("stella", password="x", is_staff=True),
        "superuser": User.objects.create_superuser("root", password="x"),
    }


def fill(pattern: Pattern, world) -> tuple[str, str]:
    """(rule, URL) for `pattern`, its arguments naming Acme's objects; fails for a pattern it cannot fill."""
    route = pattern.route
    if route.startswith("admin/"):
        rule, values = ADMIN, admin_values(pattern, world)
    elif pattern.name in TEAM_URLS or pattern.name in STAFF_URLS:
        rule = TEAM if pattern.name in TEAM_URLS else STAFF
        kind = TEAM_URLS.get(pattern.name) or STAFF_URLS[pattern.name]
        values = {param: PARAM_VALUES.get(param, world[kind].pk) for param in pattern.params}
    else:
        pytest.fail(f"{route} ({pattern.name or 'unnamed'}) takes {pattern.params} and this test cannot fill it: "
                    "add it to TEAM_URLS or STAFF_URLS in tests/webapp/test_url_isolation.py with the kind of "
                    "object it names, and make the view check ownership (access.get_owned).")
    if "(?P<" in route or "^" in route:
        pytest.fail(f"{route} is a regex pattern with an id; write it with path() converters so it can be filled.")
    url = "/" + PATTERN_PARAM_SUB.sub(lambda m: str(values[m.group(1)]), route)
    return rule, url


PATTERN_PARAM_SUB = re.compile(r"<(?:\w+:)?(\w+)>")


def admin_values(pattern: Pattern, world) -> dict[str, object]:
    route = pattern.route
    if route.startswith("admin/r/"):  # view on site: a content type and an object of it
        experiment = world["experiment"]
        return {"content_type_id": ContentType.objects.get_for_model(experiment).pk, "object_id": experiment.pk}
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    label = f"{match.group(1)}.{match.group(2)}" if match else ""
    if label not in ADMIN_MODELS:
        pytest.fail(f"{route}: the admin now has {label or 'a page'} with an id; add its model to ADMIN_MODELS.")
    return dict.fromkeys(pattern.params, world[ADMIN_MODELS[label]].pk)


def snapshot() -> dict[str, list[dict]]:
    """Every row an intruder could change (volatile bookkeeping columns left out)."""
    volatile = {"last_used_at", "last_login"}
    models = (Team, Membership, Checkpoint, Dataset, Experiment, Experiment.tags.through, Tag, ApiToken, Worker, Pool,
              QueueSwitch, Group, get_user_model(), Webhook, NotificationSettings, Delivery)
    return {m.__name__: [{k: v for k, v in row.items() if k not in volatile} for row in m.objects.order_by("pk").values()]
            for m in models}


def send(client: Client, method: str, url: str):
    if method == "get":
        return client.get(url)
    if url.startswith("/api/") or url.endswith(".json"):
        return client.post(url, json.dumps(HOSTILE_JSON), content_type="application/json")
    return client.post(url, HOSTILE_FORM)


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bearer(user) -> Client:
    _, secret = ApiToken.issue(user, "isolation test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_the_walk_finds_the_projects_urls_with_ids():
    names = {p.name for p in PATTERNS}
    assert set(TEAM_URLS) | set(STAFF_URLS) <= names, "a URL listed here is gone: remove it from the table"
    assert any(p.route.startswith("admin/") for p in PATTERNS)
    assert len(PATTERNS) >= len(TEAM_URLS) + len(STAFF_URLS)


@pytest.mark.parametrize("pattern", PATTERNS, ids=str)
def test_another_teams_member_gets_nothing_at_this_url(pattern, world, charlie):
    rule, url = fill(pattern, world)
    before = snapshot()
    intruders = [("session", session(charlie))]
    if url.startswith("/api/"):
        intruders = [("bearer token", bearer(charlie))]
        # The API reads no cookies: a session alone is anonymous there (405 first for a method it lacks).
        assert {send(session(charlie), method, url).status_code for method in ("get", "post")} in ({401}, {401, 405})
    before = snapshot()  # the bearer token just issued is charlie's own row
    for how, client in intruders:
        statuses = {}
        for method in ("get", "post"):
            response = send(client, method, url)
            statuses[method] = response.status_code
            if rule == ADMIN:
                assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), \
                    (method, how, response.status_code)
        if rule == TEAM:
            assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (how, statuses)
        elif rule == STAFF:
            assert set(statuses.values()) <= {403, 405} and 403 in statuses.values(), (how, statuses)
    assert snapshot() == before, "an intruder's request changed the database"
    control(rule, url, world)


def control(rule: str, url: str, world) -> None:
    """The same URL as someone entitled to it answers something other than "not found" / "forbidden"."""
    if rule == ADMIN:
        response = session(world["superuser"]).get(url)
        assert not (response.status_code == 302 and response["Location"].startswith("/admin/login/")), url
        return
    user = world["user"] if rule == TEAM else world["staff"]
    client = bearer(user) if url.startswith("/api/") else session(user)
    response = send(client, "get", url)
    if response.status_code == 405:
        response = send(client, "post", url)
    assert response.status_code not in (403, 404, 405), (url, response.status_code, response.content[:300])
