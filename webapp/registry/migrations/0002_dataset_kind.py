# A dataset's kind (text classification or language-model text) and an LM dataset's column mapping.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="kind",
            field=models.CharField(choices=[("classification", "Text classification"), ("lm", "Language model")],
                                   default="classification", max_length=20),
        ),
        migrations.AddField(
            model_name="dataset",
            name="lm_columns",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
