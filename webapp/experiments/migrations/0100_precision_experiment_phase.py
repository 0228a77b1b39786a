from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0006_metricpoint_no_separate_experiment_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="experiment",
            name="phase",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
