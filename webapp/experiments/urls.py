from django.urls import path

from webapp.experiments import environment_view, lm_try_it
from webapp.experiments import views_artifacts as artifacts
from webapp.experiments import views_compare as compare
from webapp.experiments import views_experiments as experiments
from webapp.experiments import views_json as live
from webapp.experiments import views_list as listing
from webapp.experiments import views_tracker as tracker

app_name = "experiments"
urlpatterns = [
    path("", listing.experiment_list, name="list"),
    path("compare/", compare.compare, name="compare"),
    path("experiments/new/", experiments.experiment_new, name="new"),
    path("experiments/<int:pk>/", experiments.experiment_detail, name="detail"),
    path("experiments/<int:pk>/cancel/", experiments.experiment_cancel, name="cancel"),
    path("experiments/<int:pk>/config.json", experiments.experiment_config, name="config"),
    path("experiments/<int:pk>/environment.json", environment_view.environment_json, name="environment"),
    path("experiments/<int:pk>/requirements.txt", environment_view.requirements, name="requirements"),
    path("experiments/<int:pk>/status.json", live.status, name="status"),
    path("experiments/<int:pk>/metrics.json", live.metrics, name="metrics"),
    path("experiments/<int:pk>/annotate.json", listing.experiment_annotate, name="annotate"),
    path("experiments/<int:pk>/predict.json", artifacts.predict, name="predict"),
    path("experiments/<int:pk>/generate/", lm_try_it.generate, name="generate"),
    path("experiments/<int:pk>/student.zip", artifacts.download_student, name="download_student"),
    path("experiments/live.json", tracker.live, name="live"),
    path("experiments/<int:pk>/artifacts/", tracker.artifacts, name="artifacts"),
    path("experiments/<int:pk>/artifacts/<path:path>", tracker.artifact_file, name="artifact_file"),
    path("experiments/<int:pk>/run.log", tracker.run_log, name="run_log"),
    path("experiments/<int:pk>/metrics.csv", tracker.metrics_csv, name="metrics_csv"),
]
