"""Teams own everything; a user acts only on the objects of teams they belong to."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from webapp.gpuqueue.models import validate_pool_name

# The range of an experiment's priority (the form's priority field reads it too).
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000


def validate_pool_names(value) -> None:
    """A list of distinct pool names."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("Give a list of pool names.")
    for name in value:
        validate_pool_name(name)
    if len(set(value)) != len(value):
        raise ValidationError("A pool is listed twice.")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    # How many of this team's experiments may run at once (0 = no limit).
    max_running = models.PositiveIntegerField(default=0)
    # What members may ask of the queue (staff set these in the admin; staff themselves are not bound).
    max_priority = models.IntegerField(
        null=True, blank=True, validators=[MinValueValidator(MIN_PRIORITY), MaxValueValidator(MAX_PRIORITY)],
        help_text="The highest priority a member may queue at. Blank: no ceiling.")
    allowed_pools = models.JSONField(
        default=list, blank=True, validators=[validate_pool_names],
        help_text="The GPU pools members may queue into. Empty: any pool.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def priority_refusal(self, priority: int) -> str | None:
        """Why a member of this team may not queue at `priority`, or None."""
        if self.max_priority is not None and priority > self.max_priority:
            return (f"{self.name} may queue at priority {self.max_priority} at most; "
                    f"ask staff to raise the ceiling or to move the experiment up the queue.")
        return None

    def pool_refusal(self, pool: str) -> str | None:
        """Why a member of this team may not queue into `pool`, or None."""
        if self.allowed_pools and pool not in self.allowed_pools:
            return f"{self.name} may not use the pool {pool!r}; choose {_either(self.allowed_pools)}."
        return None


def _either(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


def teams_of(user) -> models.QuerySet[Team]:
    """The teams `user` belongs to (none for anonymous users)."""
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user)
