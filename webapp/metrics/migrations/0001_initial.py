"""MetricPoint and MetricRollup move here from the experiments app without touching a row.

State only, as registry 0001: the tables keep their names (`db_table = "experiments_*"`), rows,
indexes and foreign keys; experiments 0102_apps_move_metrics drops the models from its state.
The content types follow, so permissions and admin log entries on them keep working.
"""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ["metricpoint", "metricrollup"]


def relabel_content_types(old: str, new: str):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        # On a fresh database there are none yet (post_migrate creates them after every migration ran).
        if not ContentType.objects.using(db).filter(app_label=new, model__in=MOVED).exists():
            ContentType.objects.using(db).filter(app_label=old, model__in=MOVED).update(app_label=new)
    return run


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("experiments", "0014_word_vectors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='MetricPoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=100)),
                        ('step', models.PositiveIntegerField()),
                        ('value', models.FloatField()),
                        ('experiment', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='experiments.experiment')),
                    ],
                    options={
                        'db_table': 'experiments_metricpoint',
                        'constraints': [models.UniqueConstraint(fields=('experiment', 'key', 'step'), name='unique_metric_point')],
                    },
                ),
                migrations.CreateModel(
                    name='MetricRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=100)),
                        ('block', models.PositiveIntegerField()),
                        ('count', models.PositiveIntegerField()),
                        ('min_step', models.PositiveIntegerField()),
                        ('min_value', models.FloatField()),
                        ('max_step', models.PositiveIntegerField()),
                        ('max_value', models.FloatField()),
                        ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='experiments.experiment')),
                    ],
                    options={
                        'db_table': 'experiments_metricrollup',
                        'constraints': [models.UniqueConstraint(fields=('experiment', 'key', 'block'), name='unique_metric_rollup')],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types("experiments", "metrics"),
                             relabel_content_types("metrics", "experiments")),
    ]
