from django.urls import path

from webapp.notifications import views

app_name = "notifications"
urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("webhooks/", views.add_webhook, name="add_webhook"),
    path("webhooks/<int:pk>/delete/", views.delete_webhook, name="delete_webhook"),
    path("test/", views.test_send, name="test"),
]
