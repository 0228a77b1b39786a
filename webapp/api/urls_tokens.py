from django.urls import path

from webapp.api import views_tokens

urlpatterns = [
    path("tokens/", views_tokens.token_list, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", views_tokens.token_revoke, name="api_token_revoke"),
]
