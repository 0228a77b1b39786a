from django.contrib import admin

from webapp.accounts.models import Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "max_running", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
