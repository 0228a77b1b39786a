from __future__ import annotations

from django import forms

from webapp.notifications import addresses
from webapp.notifications.models import NotificationSettings, Webhook

MAX_HOOKS = 10


class SettingsForm(forms.ModelForm):
    class Meta:
        model = NotificationSettings
        fields = ["email", "scope", "on_succeeded", "on_failed", "on_cancelled", "on_sweep"]
        labels = {"email": "E-mail me", "scope": "About", "on_succeeded": "a run succeeds",
                  "on_failed": "a run fails", "on_cancelled": "a run is cancelled",
                  "on_sweep": "every run of a sweep has ended"}


class WebhookForm(forms.ModelForm):
    url = forms.URLField(label="Webhook URL", max_length=500, assume_scheme="https")

    class Meta:
        model = Webhook
        fields = ["url"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        refused = addresses.problem(url)
        if refused:
            raise forms.ValidationError(refused)
        if self.user is not None and self.user.webhooks.count() >= MAX_HOOKS:
            raise forms.ValidationError(f"At most {MAX_HOOKS} webhooks per person; delete one first.")
        return url
