"""/notifications/: a person's notification settings, their webhooks, and test sends."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.notifications.forms import SettingsForm, WebhookForm
from webapp.notifications.models import Delivery, NotificationSettings
from webapp.notifications.send import SendError, post_webhook, send_email


def _settings_of(user) -> NotificationSettings:
    return NotificationSettings.objects.get_or_create(user=user)[0]


@login_required
def settings_page(request):
    choice = _settings_of(request.user)
    form = SettingsForm(request.POST if request.method == "POST" else None, instance=choice)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Notification settings saved.")
        return redirect("notifications:settings")
    return render(request, "notifications/settings.html", {
        "form": form, "hook_form": WebhookForm(user=request.user), "hooks": request.user.webhooks.order_by("pk"),
        "recent": Delivery.objects.filter(user=request.user).order_by("-pk")[:20], "nav": "notifications",
    }, status=400 if form.is_bound else 200)


@login_required
@require_POST
def add_webhook(request):
    form = WebhookForm(request.POST, user=request.user)
    if form.is_valid():
        hook = form.save(commit=False)
        hook.user = request.user
        hook.save()
        messages.success(request, "Webhook added. Check its signature with the secret shown beside it.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("notifications:settings")


@login_required
@require_POST
def delete_webhook(request, pk: int):
    get_object_or_404(request.user.webhooks, pk=pk).delete()
    messages.success(request, "Webhook deleted.")
    return redirect("notifications:settings")


def _test_payload(user) -> dict:
    return {"text": f"Test notification for {user.get_username()} from Distillery.", "title": "Distillery test",
            "event": "test", "url": ""}


@login_required
@require_POST
def test_send(request):
    """Send a test message now (not through the queue) to the e-mail address or to one webhook (`hook`)."""
    hook_id = request.POST.get("hook", "")
    try:
        if hook_id:
            if not (hook_id.isascii() and hook_id.isdigit() and len(hook_id) <= 12):
                raise SendError("No such webhook.")
            hook = get_object_or_404(request.user.webhooks, pk=int(hook_id))
            post_webhook(hook.url, hook.secret, _test_payload(request.user), delivery_id="test")
            messages.success(request, f"Test sent to {hook.url}.")
        else:
            send_email(request.user.email, _test_payload(request.user))
            messages.success(request, f"Test e-mail sent to {request.user.email}.")
    except SendError as exc:
        messages.error(request, f"The test did not go out: {exc}")
    return redirect("notifications:settings")
