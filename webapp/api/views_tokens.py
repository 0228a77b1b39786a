"""The "API tokens" page: issue a token (its secret is shown once) and revoke tokens."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.api.models import ApiToken

MAX_TOKENS = 50


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “sweep script on gpu-box”.")


@login_required
def token_list(request):
    form = TokenForm(request.POST or None)
    secret = None
    tokens = ApiToken.objects.filter(user=request.user)
    if request.method == "POST" and form.is_valid():
        if tokens.count() >= MAX_TOKENS:
            form.add_error("name", f"You already have {MAX_TOKENS} tokens; revoke some first.")
        else:
            token, secret = ApiToken.issue(request.user, form.cleaned_data["name"])
            form = TokenForm()
    response = render(request, "api/tokens.html", {"form": form, "tokens": tokens.all(), "secret": secret,
                                                   "nav": "tokens"})
    if secret:
        response["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's token: 404
    token.delete()
    messages.success(request, f"Revoked the token “{token.name}”.")
    return redirect("api_tokens")
