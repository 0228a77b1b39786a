from django.contrib import admin

from webapp.experiments.models import Experiment


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "status", "student_type", "priority", "created_at")
    list_filter = ("status", "team")
    readonly_fields = ("config", "results", "latest", "best")
