import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0010_experiment_dependencies'),
    ]

    operations = [
        migrations.AlterField(
            model_name='experiment',
            name='teacher',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='experiments', to='experiments.checkpoint'),
        ),
        migrations.AlterField(
            model_name='experiment',
            name='dataset',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='experiments', to='experiments.dataset'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='tracked',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='experiment',
            name='environment',
            field=models.JSONField(blank=True, null=True),
        ),
    ]
