"""The REST API. Every route here is described in schema.py (a test checks); anything else answers a JSON 404."""

from django.urls import path, re_path

from webapp.api import schema, views, views_from_config, views_tracking

app_name = "api"
urlpatterns = [
    path("schema.json", schema.schema_view, name="schema"),
    path("experiments/", views.experiments, name="experiments"),
    path("experiments/from-config/", views_from_config.from_config, name="experiment_from_config"),
    path("experiments/<int:pk>/", views.experiment, name="experiment"),
    path("experiments/<int:pk>/cancel/", views.experiment_cancel, name="experiment_cancel"),
    path("experiments/<int:pk>/metrics/", views.experiment_metrics, name="experiment_metrics"),
    path("experiments/<int:pk>/results/", views.experiment_results, name="experiment_results"),
    path("experiments/<int:pk>/ingest/", views_tracking.ingest, name="experiment_ingest"),
    path("experiments/<int:pk>/finish/", views_tracking.finish, name="experiment_finish"),
    path("experiments/<int:pk>/student.zip", views_tracking.student_zip, name="experiment_student"),
    path("tracked/", views_tracking.tracked, name="tracked"),
    path("datasets/", views.datasets_view, name="datasets"),
    path("datasets/<int:pk>/", views.dataset, name="dataset"),
    path("checkpoints/", views.checkpoints, name="checkpoints"),
    path("checkpoints/<int:pk>/", views.checkpoint, name="checkpoint"),
    # Last: a malformed id (/api/experiments/-1/) or an unknown path gets the error shape, not an HTML page.
    re_path(r"^", views.not_found, name="not_found"),
]
