import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_team_queue_limits"),
        ("experiments", "0013_tune_trials"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="WordVectors",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("path", models.CharField(max_length=1000)),
                ("count", models.PositiveIntegerField()),
                ("dim", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("created_by", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+", to=settings.AUTH_USER_MODEL)),
                ("team", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="word_vectors",
                                           to="accounts.team")),
            ],
            options={"verbose_name": "word-vector file", "ordering": ["-created_at"]},
        ),
        migrations.AddConstraint(
            model_name="wordvectors",
            constraint=models.UniqueConstraint(fields=("team", "name"), name="unique_word_vectors_name"),
        ),
    ]
