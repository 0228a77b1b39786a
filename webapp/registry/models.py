"""Word-vector files a team uploaded (word2vec/GloVe text) to start a word-vocabulary student's embeddings."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from webapp.accounts.models import Team


class WordVectors(models.Model):
    """One uploaded, fully checked word-vector file, stored under DATASET_ROOT/<team-slug>/vectors/."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="word_vectors")
    name = models.CharField(max_length=100)
    path = models.CharField(max_length=1000)
    count = models.PositiveIntegerField()  # vectors in the file
    dim = models.PositiveIntegerField()  # values per vector
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "word-vector file"
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_word_vectors_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.count:,} × {self.dim})"
