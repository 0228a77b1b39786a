from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0007_checkpoint_unpacking"),
    ]

    operations = [
        migrations.AddField(
            model_name="checkpoint",
            name="hub_id",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="checkpoint",
            name="hub_revision",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="checkpoint",
            name="hub_commit",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
