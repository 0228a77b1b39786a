from django.contrib import admin

from webapp.experiments.models import Checkpoint, Dataset, Experiment


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "path", "created_at")
    list_filter = ("team",)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "format", "created_at")
    list_filter = ("team",)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "status", "student_type", "priority", "created_at")
    list_filter = ("status", "team")
    readonly_fields = ("config", "results", "latest", "best")
