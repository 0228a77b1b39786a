from django.urls import path

from webapp.gpuqueue import usage, views

app_name = "gpuqueue"
urlpatterns = [
    path("", views.board, name="board"),
    path("workers/", views.workers, name="workers"),
    path("workers/usage.json", usage.workers_usage, name="workers_usage"),
    path("pause/", views.pause, name="pause"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/top/", views.move_top, name="top"),
    path("<int:pk>/ahead/", views.move_ahead, name="ahead"),
    path("<int:pk>/priority/", views.priority, name="priority"),
    path("<int:pk>/requeue/", views.requeue, name="requeue"),
    path("workers/<int:pk>/mode/", views.worker_mode, name="worker_mode"),
    path("teams/<int:pk>/limit/", views.team_limit, name="team_limit"),
]
