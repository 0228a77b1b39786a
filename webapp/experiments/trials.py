"""Tune-KD trials: the child runs of an experiment with `tune.enabled` (distill_core/tune.py).

A trial belongs to its experiment (and so to its team: every view reaches trials only through an
experiment the user may see). The worker's sink writes them (workers/trials.py); the page, the list
and the API read them. models.py imports this module (so Django registers the model); the
foreign key names Experiment by its label, so nothing is imported back.
"""

from __future__ import annotations

from django.db import models


class TuneTrial(models.Model):
    """One short trial run: its KD settings, its curve, its best dev score, and whether it won."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"

    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="trials")
    index = models.PositiveIntegerField()  # position in the grid (temperature, then alpha, then loss)
    temperature = models.FloatField()
    alpha = models.FloatField()
    loss = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    steps = models.PositiveIntegerField(default=0)  # the trial's budget; the steps it ran once finished
    metric = models.CharField(max_length=20, default="accuracy")  # what `score` is: best dev accuracy or macro_f1
    score = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict)  # the best dev evaluation: accuracy, macro_f1, step
    # {"train/loss": [[step, value], ...], "dev/accuracy": [...], "dev/macro_f1": [...]}
    curve = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    chosen = models.BooleanField(default=False)
    explanation = models.TextField(blank=True)  # on the chosen trial: why it won, in words
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["experiment", "index"]
        constraints = [models.UniqueConstraint(fields=["experiment", "index"], name="unique_tune_trial")]

    def __str__(self) -> str:
        return f"{self.experiment_id} trial {self.index + 1}: {self.settings_label}"

    @property
    def settings_label(self) -> str:
        return f"T = {self.temperature:g}, α = {self.alpha:g}, {self.loss}"

    def as_dict(self) -> dict:
        return {"index": self.index, "temperature": self.temperature, "alpha": self.alpha, "loss": self.loss,
                "status": self.status, "steps": self.steps, "metric": self.metric, "score": self.score,
                "metrics": self.metrics, "curve": self.curve, "error": self.error, "chosen": self.chosen,
                "explanation": self.explanation}
