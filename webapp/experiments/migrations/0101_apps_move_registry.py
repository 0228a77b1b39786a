"""Checkpoint, Dataset and WordVectors now belong to the registry app (its 0001): state only.

Experiment.teacher and Experiment.dataset point at the registry's models, which use the very
tables these did, so the columns and their foreign-key constraints stay as they are.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0014_word_vectors"),
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="experiment",
                    name="teacher",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="experiments", to="registry.checkpoint"),
                ),
                migrations.AlterField(
                    model_name="experiment",
                    name="dataset",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="experiments", to="registry.dataset"),
                ),
                migrations.DeleteModel(name="Checkpoint"),
                migrations.DeleteModel(name="Dataset"),
                migrations.DeleteModel(name="WordVectors"),
            ],
        ),
    ]
