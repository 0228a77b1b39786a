"""Personal API tokens: the secret is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

PREFIX = "dst_"


def hash_token(raw: str) -> str:
    # A plain hash suffices: tokens are 256 random bits, not guessable passwords.
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the token, so a person can tell their tokens apart.
    prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str) -> tuple[ApiToken, str]:
        """A new token for `user` and its secret, which is not stored and cannot be shown again."""
        raw = PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=raw[:12], token_hash=hash_token(raw))
        return token, raw

    def assign_new_secret(self) -> str:
        """Set prefix and hash for a fresh secret (admin "add"); the caller saves."""
        raw = PREFIX + secrets.token_urlsafe(32)
        self.prefix, self.token_hash = raw[:12], hash_token(raw)
        return raw
