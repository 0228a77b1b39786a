from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("webapp.accounts.urls")),
    path("accounts/", include("webapp.api.urls_tokens")),
    path("api/", include("webapp.api.urls")),
    path("queue/", include("webapp.gpuqueue.urls")),
    path("notifications/", include("webapp.notifications.urls")),
    path("", include("webapp.registry.urls")),
    path("", include("webapp.experiments.urls")),
]
