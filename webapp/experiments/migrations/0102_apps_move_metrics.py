"""MetricPoint and MetricRollup now belong to the metrics app (its 0001): state only, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0101_apps_move_registry"),
        ("metrics", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="MetricPoint"),
                migrations.DeleteModel(name="MetricRollup"),
            ],
        ),
    ]
