from django.urls import path

from webapp.experiments import vectors
from webapp.experiments import views_artifacts as artifacts
from webapp.experiments import views_compare as compare
from webapp.experiments import views_experiments as experiments
from webapp.experiments import views_json as live
from webapp.experiments import views_list as listing
from webapp.experiments import views_registry as registry

app_name = "experiments"
urlpatterns = [
    path("", listing.experiment_list, name="list"),
    path("compare/", compare.compare, name="compare"),
    path("experiments/new/", experiments.experiment_new, name="new"),
    path("experiments/<int:pk>/", experiments.experiment_detail, name="detail"),
    path("experiments/<int:pk>/cancel/", experiments.experiment_cancel, name="cancel"),
    path("experiments/<int:pk>/config.json", experiments.experiment_config, name="config"),
    path("experiments/<int:pk>/status.json", live.status, name="status"),
    path("experiments/<int:pk>/metrics.json", live.metrics, name="metrics"),
    path("experiments/<int:pk>/annotate.json", listing.experiment_annotate, name="annotate"),
    path("experiments/<int:pk>/predict.json", artifacts.predict, name="predict"),
    path("experiments/<int:pk>/student.zip", artifacts.download_student, name="download_student"),
    path("checkpoints/", registry.checkpoint_list, name="checkpoints"),
    path("checkpoints/new/", registry.checkpoint_new, name="checkpoint_new"),
    path("checkpoints/<int:pk>/", registry.checkpoint_detail, name="checkpoint"),
    path("checkpoints/<int:pk>/status.json", registry.checkpoint_status, name="checkpoint_status"),
    path("datasets/", registry.dataset_list, name="datasets"),
    path("datasets/new/", registry.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", registry.dataset_detail, name="dataset"),
    path("word-vectors/", vectors.word_vectors, name="word_vectors"),
]
