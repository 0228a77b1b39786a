from django.contrib import admin

from webapp.registry.models import Checkpoint, Dataset


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "path", "created_at")
    list_filter = ("team",)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "format", "created_at")
    list_filter = ("team",)
