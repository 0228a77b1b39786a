from __future__ import annotations

from django import forms
from django.contrib import admin

from webapp.accounts.models import Membership, Team, validate_pool_names


class PoolListField(forms.CharField):
    """A list of pool names typed as "default, a100" (the model stores a JSON list)."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        return [name.strip() for name in text.split(",") if name.strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        validate_pool_names(value)


class TeamAdminForm(forms.ModelForm):
    allowed_pools = PoolListField(required=False, help_text=Team._meta.get_field("allowed_pools").help_text
                                  + " Separate names with commas, e.g. “default, a100”.")

    class Meta:
        model = Team
        fields = "__all__"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ("name", "slug", "max_running", "max_priority", "pools", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    @admin.display(description="Allowed pools")
    def pools(self, team: Team) -> str:
        return ", ".join(team.allowed_pools) or "any"
