"""The metric store: one row per (run, series, step), and min/max rollups of blocks of steps.

Workers write the points (workers/bulk.py, workers/sink.py), the pages read them through
downsample.py. The tables are the ones these models had in the experiments app (`db_table`).
"""

from __future__ import annotations

from django.db import models


class MetricPoint(models.Model):
    """One value of one metric at one step; unique so a retried flush cannot duplicate."""

    # no index of its own: the unique (experiment, key, step) index serves every lookup by experiment,
    # and every metric write maintains one index less (docs/BENCHMARKS.md, metric ingest)
    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="metrics",
                                   db_index=False)
    key = models.CharField(max_length=100)  # "train/loss", "train/lr", "dev/accuracy", ...
    step = models.PositiveIntegerField()
    value = models.FloatField()

    class Meta:
        db_table = "experiments_metricpoint"  # the table it had in the experiments app (metrics 0001, state only)
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key", "step"], name="unique_metric_point"),
        ]


class MetricRollup(models.Model):
    """Min/max (with their steps) of one series over a block of ROLLUP_BLOCK steps.

    Built lazily by webapp.metrics.downsample for blocks the run has moved past, so a
    view of a million-point run reads ~1/32 of the rows; the points stay the source of truth.
    """

    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    block = models.PositiveIntegerField()  # step // ROLLUP_BLOCK
    count = models.PositiveIntegerField()
    min_step = models.PositiveIntegerField()
    min_value = models.FloatField()
    max_step = models.PositiveIntegerField()
    max_value = models.FloatField()

    class Meta:
        db_table = "experiments_metricrollup"
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key", "block"], name="unique_metric_rollup"),
        ]
