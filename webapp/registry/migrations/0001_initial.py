"""Checkpoint, Dataset and WordVectors move here from the experiments app without touching a row.

State only: the tables keep their names (`db_table = "experiments_*"`), their rows, their
sequences and the foreign keys other tables hold to them; experiments 0101_apps_move_registry
then points Experiment.teacher/dataset at these models and drops them from its own state.
The content types follow, so permissions and admin log entries on them keep working.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ["checkpoint", "dataset", "wordvectors"]


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
        ("accounts", "0002_team_queue_limits"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("experiments", "0014_word_vectors"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Checkpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('path', models.CharField(max_length=1000)),
                        ('hub_id', models.CharField(blank=True, max_length=200)),
                        ('hub_revision', models.CharField(blank=True, max_length=200)),
                        ('hub_commit', models.CharField(blank=True, max_length=64)),
                        ('info', models.JSONField(default=dict)),
                        ('status', models.CharField(choices=[('UNPACKING', 'Unpacking'), ('READY', 'Ready'), ('FAILED', 'Failed')], default='READY', max_length=10)),
                        ('error', models.TextField(blank=True)),
                        ('bytes_done', models.BigIntegerField(default=0)),
                        ('bytes_total', models.BigIntegerField(default=0)),
                        ('task_id', models.CharField(blank=True, max_length=64)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='checkpoints', to='accounts.team')),
                        ('trained_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='trained_checkpoints', to='experiments.experiment')),
                    ],
                    options={
                        'db_table': 'experiments_checkpoint',
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('team', 'name'), name='unique_checkpoint_name')],
                    },
                ),
                migrations.CreateModel(
                    name='Dataset',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('train_path', models.CharField(max_length=1000)),
                        ('dev_path', models.CharField(blank=True, max_length=1000)),
                        ('test_path', models.CharField(blank=True, max_length=1000)),
                        ('format', models.CharField(default='tsv', max_length=10)),
                        ('has_header', models.BooleanField(default=False)),
                        ('text_column', models.CharField(default='0', max_length=100)),
                        ('text_pair_column', models.CharField(blank=True, max_length=100)),
                        ('label_column', models.CharField(default='1', max_length=100)),
                        ('labels', models.JSONField(default=list)),
                        ('stats', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='datasets', to='accounts.team')),
                    ],
                    options={
                        'db_table': 'experiments_dataset',
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('team', 'name'), name='unique_dataset_name')],
                    },
                ),
                migrations.CreateModel(
                    name='WordVectors',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('path', models.CharField(max_length=1000)),
                        ('count', models.PositiveIntegerField()),
                        ('dim', models.PositiveIntegerField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='word_vectors', to='accounts.team')),
                    ],
                    options={
                        'verbose_name': 'word-vector file',
                        'db_table': 'experiments_wordvectors',
                        'ordering': ['-created_at'],
                        'constraints': [models.UniqueConstraint(fields=('team', 'name'), name='unique_word_vectors_name')],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types("experiments", "registry"),
                             relabel_content_types("registry", "experiments")),
    ]
