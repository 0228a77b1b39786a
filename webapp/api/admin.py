from django.contrib import admin, messages

from webapp.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens can be issued (the secret is shown once, in a message) and revoked (deleted)."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    list_filter = ("user",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        raw = obj.assign_new_secret() if not change else None
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(request, f"API token for {obj.user}: {raw} — copy it now; it is not stored and "
                                      "cannot be shown again.")
