"""A database created by the migrations before the registry and metrics apps keeps its rows and foreign keys.

The experiments app's own tables are dropped, rebuilt one migration at a time up to
experiments 0014 (what a deployment of that code has), filled, and migrated forward: the
squashed migration is taken as applied, the registry's and the metrics app's models read the
same rows from the same tables, and the foreign keys between them still hold and still refuse a dangling id.
The schema those migrations built equals the one the squashed migration builds on a fresh
database (the test database), table by table, column by column, index by index.
"""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint, MetricRollup
from webapp.registry.models import Checkpoint, Dataset, WordVectors

MAIN_EXPERIMENTS = ("experiments", "0014_word_vectors")


def executor(replace_migrations: bool = True) -> MigrationExecutor:
    """An executor over the migrations on disk; without replacing, the squashed ones run one by one."""
    ex = MigrationExecutor(connection)
    if not replace_migrations:
        ex.loader = MigrationLoader(connection, replace_migrations=False)
    return ex


def migrate_to_leaves() -> None:
    ex = executor()
    ex.migrate(ex.loader.graph.leaf_nodes())


def build_main_database():
    """Drop the experiments tables and rebuild them as main's migrations 0001..0014 did; its historical apps."""
    executor().migrate([("experiments", None)])  # also unapplies registry 0001 and metrics 0001, which depend on it
    ex = executor(replace_migrations=False)
    return ex.migrate([MAIN_EXPERIMENTS]).apps


def schema() -> dict:
    """Every column, index and constraint of the experiments app's tables (the registry's and metrics' included)."""
    with connection.cursor() as cursor:
        tables = sorted(t.name for t in connection.introspection.get_table_list(cursor)
                        if t.name.startswith("experiments_"))
        return {table: {
            "columns": sorted((c.name, c.type_code, c.null_ok) for c in
                              connection.introspection.get_table_description(cursor, table)),
            "constraints": sorted((name if not name.startswith("__unnamed") else "", sorted(c["columns"]),
                                   c["primary_key"], c["unique"], c["foreign_key"], c["index"], c["check"])
                                  for name, c in connection.introspection.get_constraints(cursor, table).items()),
        } for table in tables}


def fill(apps) -> dict:
    """One row of every moved model and of each model that points at them, through main's model classes."""
    user = apps.get_model("auth", "User").objects.create(username="old-alice")
    team = apps.get_model("accounts", "Team").objects.create(name="Old Acme", slug="old-acme")
    old = {name: apps.get_model("experiments", name) for name in ("Checkpoint", "Dataset", "WordVectors",
                                                                  "Experiment", "MetricPoint", "MetricRollup")}
    teacher = old["Checkpoint"].objects.create(team=team, name="bert", path="/ckpt/bert", info={"num_labels": 2},
                                               created_by=user)
    dataset = old["Dataset"].objects.create(team=team, name="sst2", train_path="/data/train.tsv", labels=["n", "p"],
                                            created_by=user)
    vectors = old["WordVectors"].objects.create(team=team, name="glove", path="/data/v.txt", count=3, dim=4)
    experiment = old["Experiment"].objects.create(team=team, owner=user, name="kd", teacher=teacher,
                                                  dataset=dataset, student_type="textcnn", config={"kd": {}})
    old["Checkpoint"].objects.filter(pk=teacher.pk).update(trained_by=experiment)
    old["MetricPoint"].objects.create(experiment_id=experiment.pk, key="train/loss", step=7, value=0.5)
    old["MetricRollup"].objects.create(experiment_id=experiment.pk, key="train/loss", block=0, count=1, min_step=7,
                                       min_value=0.5, max_step=7, max_value=0.5)
    content_types = apps.get_model("contenttypes", "ContentType").objects
    content_types.filter(model__in=["checkpoint", "metricpoint"]).delete()
    types = {model: content_types.create(app_label="experiments", model=model).pk
             for model in ("checkpoint", "metricpoint")}
    return {"teacher": teacher.pk, "dataset": dataset.pk, "vectors": vectors.pk, "experiment": experiment.pk,
            "content_types": types}


@pytest.mark.django_db(transaction=True)
def test_a_database_of_main_migrates_with_its_rows_and_foreign_keys():
    squashed = schema()
    try:
        apps = build_main_database()
        assert schema() == squashed
        ids = fill(apps)
        migrate_to_leaves()
        applied = executor().loader.applied_migrations
        assert {("experiments", "0100_apps_squashed_0014"), ("registry", "0001_initial"),
                ("metrics", "0001_initial")} <= set(applied)

        teacher = Checkpoint.objects.get(pk=ids["teacher"])
        experiment = Experiment.objects.select_related("teacher", "dataset").get(pk=ids["experiment"])
        assert (teacher.name, teacher.info, teacher.trained_by_id) == ("bert", {"num_labels": 2}, experiment.pk)
        assert experiment.teacher == teacher and experiment.dataset.labels == ["n", "p"]
        assert list(teacher.experiments.all()) == [experiment]
        assert WordVectors.objects.get(pk=ids["vectors"]).dim == 4
        assert list(experiment.metrics.values_list("key", "step", "value")) == [("train/loss", 7, 0.5)]
        assert MetricRollup.objects.get(experiment=experiment).max_step == 7

        ContentType.objects.clear_cache()
        assert ContentType.objects.get(pk=ids["content_types"]["checkpoint"]).app_label == "registry"
        assert ContentType.objects.get(pk=ids["content_types"]["metricpoint"]).app_label == "metrics"

        # New rows continue the tables' ids; the database still refuses a teacher that does not exist.
        newer = Checkpoint.objects.create(team=teacher.team, name="roberta", path="/ckpt/roberta")
        assert newer.pk > teacher.pk
        with pytest.raises(IntegrityError), transaction.atomic():
            Experiment.objects.filter(pk=experiment.pk).update(teacher_id=newer.pk + 1000)
            _check_constraints()
        with pytest.raises(IntegrityError), transaction.atomic():
            Dataset.objects.filter(pk=ids["dataset"]).delete()  # PROTECT, as before the move
        with pytest.raises(IntegrityError), transaction.atomic():
            MetricPoint.objects.create(experiment_id=experiment.pk, key="train/loss", step=7, value=1.0)
    finally:
        migrate_to_leaves()
        ContentType.objects.clear_cache()  # the rows it cached were replaced


def _check_constraints() -> None:
    """Foreign keys are checked at commit on both databases; ask now, inside the block."""
    connection.check_constraints(table_names=["experiments_experiment"])


@pytest.mark.django_db
def test_the_models_match_the_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
