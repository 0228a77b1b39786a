"""Fixtures for the worker tests: experiments of one team on a placeholder teacher and dataset."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from webapp.accounts.models import Team
from webapp.experiments.models import Checkpoint, Dataset, Experiment


@pytest.fixture
def make_experiment(db):
    user = get_user_model().objects.create_user("alice", password="pw")
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])

    def make(name: str, **fields) -> Experiment:
        return Experiment.objects.create(team=team, owner=user, name=name, teacher=checkpoint, dataset=dataset,
                                         student_type="textcnn", config={}, **fields)

    return make
