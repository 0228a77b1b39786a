from django.urls import path

from webapp.registry import vectors, views

app_name = "registry"
urlpatterns = [
    path("checkpoints/", views.checkpoint_list, name="checkpoints"),
    path("checkpoints/new/", views.checkpoint_new, name="checkpoint_new"),
    path("checkpoints/<int:pk>/", views.checkpoint_detail, name="checkpoint"),
    path("checkpoints/<int:pk>/status.json", views.checkpoint_status, name="checkpoint_status"),
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset"),
    path("word-vectors/", vectors.word_vectors, name="word_vectors"),
]
