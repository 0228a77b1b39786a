"""Fuzz every operation of /api/schema.json in-process (schemathesis + hypothesis): no 500s, answers as documented.

Each operation gets valid inputs (positive) and invalid ones (negative), sent through Django's WSGI
handler with a member's bearer token. Generated ids are pointed at that member's own team objects
(a queued, a running, a finished and a failed experiment with metrics; a checkpoint; a dataset) so
the cases reach the forms and the serialisers instead of stopping at 404. Bounded for CI:
DISTILLERY_FUZZ_EXAMPLES examples per operation and mode (default 50), derandomised, no example
database, so a run is reproducible and takes a minute or two on two cores.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.webapp.contract import document
from tests.webapp.factories import DEV_ROWS, TRAIN_ROWS, add_points, sample_results, tsv
from webapp.experiments.models import Experiment

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(180)]  # per operation and mode, shrinking included

EXAMPLES = int(os.environ.get("DISTILLERY_FUZZ_EXAMPLES", "50"))
# CI replays the same cases every run; DISTILLERY_FUZZ_RANDOM=1 draws new ones (to hunt, not to gate).
DERANDOMIZE = os.environ.get("DISTILLERY_FUZZ_RANDOM", "") != "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(document()))  # the served one stays untouched
# (method, path, mode): an operation without inputs has no invalid ones to send.
CASES = [(method.upper(), path, mode) for path, item in document()["paths"].items() for method, op in item.items()
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode == GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")]


@dataclass
class World:
    """The fuzzing member's token and the ids its requests are pointed at, by path prefix."""

    token: str
    team: int
    teacher: int
    dataset: int
    teacher_path: str
    ids: dict[str, list[int]]
    config: dict

    def ids_for(self, path: str) -> list[int]:
        return next(ids for prefix, ids in self.ids.items() if path.startswith(prefix))


@pytest.fixture
def world(alice, acme, checkpoint, dataset, make_experiment, teacher_dir, student_export) -> World:
    from webapp.api.models import ApiToken

    S = Experiment.Status
    experiments = [make_experiment(S.QUEUED), make_experiment(S.RUNNING, progress=0.4, current_step=40,
                                                              total_steps=100, latest={"train/loss": 0.5}),
                   make_experiment(S.SUCCEEDED, progress=1.0, results={**sample_results(), "export_dir": str(student_export)},
                                   best={"dev/accuracy": 0.8}),
                   make_experiment(S.FAILED, error="the teacher vanished", log_tail="Traceback …"),
                   make_experiment(S.RUNNING, name="tracked", tracked=True)]
    Experiment.objects.filter(pk=experiments[-1].pk).update(teacher=None, dataset=None)  # as POST /api/tracked/ makes
    for experiment in experiments[1:3]:
        add_points(experiment, "train/loss", {step: 1.0 / step for step in range(1, 60)})
        add_points(experiment, "dev/accuracy", {10: 0.5, 20: 0.6, 30: 0.55})
    _, secret = ApiToken.issue(alice, "fuzz")
    return World(token=secret, team=acme.pk, teacher=checkpoint.pk, dataset=dataset.pk, teacher_path=str(teacher_dir),
                 ids={"/api/experiments/": [e.pk for e in experiments], "/api/datasets/": [dataset.pk],
                      "/api/checkpoints/": [checkpoint.pk]}, config=experiments[0].config)


@pytest.fixture
def wsgi_app(settings, wake):
    """Django's WSGI handler inside the test's transaction (as the test client runs it)."""
    settings.ALLOWED_HOSTS = ["*"]
    # The handler would close the connection after every request, and with it the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def aim(case, world: World) -> None:
    """Point generated ids at the member's own objects so the case reaches past the 404s."""
    pk = (case.path_parameters or {}).get("pk")
    if isinstance(pk, int):
        ids = world.ids_for(case.operation.path)
        case.path_parameters["pk"] = ids[pk % len(ids)]
    if not isinstance(case.body, dict):
        return
    for name in ("team", "teacher", "dataset"):
        if isinstance(case.body.get(name), int) and not isinstance(case.body[name], bool):
            case.body[name] = getattr(world, name)
    if isinstance(case.body.get("config"), dict):  # a tracked run's config: a real one, so creation can succeed
        case.body["config"] = world.config
    # Real files and a real checkpoint directory, so uploads and registrations can succeed too.
    if isinstance(case.body.get("path"), str):
        case.body["path"] = world.teacher_path
    for name, rows in (("train_file", TRAIN_ROWS), ("dev_file", DEV_ROWS), ("test_file", DEV_ROWS)):
        if case.body.get(name) is not None:  # schemathesis's Binary: random bytes, rarely a text file
            case.body[name] = tsv(rows).encode()


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_every_operation_answers_as_documented_without_server_errors(method, path, mode, world, wsgi_app):
    operation = SCHEMA[path][method]
    answered: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        aim(case, world)
        response = case.call(app=wsgi_app, headers={"Authorization": f"Bearer {world.token}"})
        answered.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    fuzz()
    assert answered, "no case was generated"
    assert all(status < 500 for status in answered)
    if mode == GenerationMode.POSITIVE:  # the aiming works: valid cases get past validation, not only 4xx
        assert any(status < 300 for status in answered), sorted(set(answered))
