"""Sign in and out with django.contrib.auth's views and our templates."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from webapp.accounts.forms import LoginForm

login_view = auth_views.LoginView.as_view(
    template_name="accounts/login.html",
    authentication_form=LoginForm,
    redirect_authenticated_user=True,
)
# POST only (Django 5): the nav's sign-out button is a small form with a CSRF token.
logout_view = auth_views.LogoutView.as_view()
