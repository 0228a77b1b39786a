from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0008_checkpoint_hub_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="experiment",
            name="phase",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
