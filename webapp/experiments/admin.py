from django.contrib import admin, messages

from webapp.experiments.models import Experiment
from webapp.gpuqueue import actions


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "status", "student_type", "priority", "created_at")
    list_filter = ("status", "team")
    # The queue's state changes only through its services (gpuqueue/actions.py), as on the page, the API and
    # the queue board: a status typed here would skip the claim token, the cancel time and the dependents.
    readonly_fields = ("config", "results", "latest", "best", "status", "priority", "position", "attempts",
                       "gpu_ids", "task_id", "cancel_requested", "cancel_requested_at", "claimed_at", "started_at",
                       "finished_at", "heartbeat_at", "worker_name")
    actions = ("cancel", "requeue")

    def _each(self, request, queryset, service) -> None:
        for experiment in queryset:
            ok, message = service(experiment)
            self.message_user(request, message, messages.SUCCESS if ok else messages.WARNING)

    @admin.action(description="Cancel the selected experiments")
    def cancel(self, request, queryset) -> None:
        self._each(request, queryset, actions.cancel)

    @admin.action(description="Re-queue the selected experiments (failed or cancelled)")
    def requeue(self, request, queryset) -> None:
        self._each(request, queryset, actions.requeue)
