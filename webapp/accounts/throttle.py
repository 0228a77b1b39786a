"""Login throttling with django-axes: whose address a request comes from, and the lockout answer.

Every password check (the sign-in page, the admin's sign-in page, anything calling
`authenticate(request=...)`) goes through axes.backends.AxesStandaloneBackend, which counts
failures per username and per client address (settings.AXES_LOCKOUT_PARAMETERS) and refuses
even a correct password while either is locked out.
"""

from __future__ import annotations

import ipaddress
import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    """The address to count failures against (None when the request carries no valid one).

    Behind the TLS proxy (DISTILLERY_BEHIND_TLS_PROXY) REMOTE_ADDR is the proxy itself, so
    every visitor would share one counter: use the last X-Forwarded-For entry instead, the one
    our proxy appended (the entries before it are whatever the client chose to send). Only a
    real address is returned: axes stores it in an IP column, and Postgres refuses anything else.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        address = _valid(forwarded.rsplit(",", 1)[-1])
        if address:
            return address
    return _valid(request.META.get("REMOTE_ADDR", ""))


def _valid(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def cooloff_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = cooloff_minutes()
    return (f"Too many failed sign-ins for this account or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it.")


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """Answer 429 with a Retry-After: JSON in the API's error shape when asked for, else a page."""
    message = lockout_message()
    wants_json = (request.path.startswith("/api/")
                  or "application/json" in request.META.get("HTTP_ACCEPT", "")
                  or request.META.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest")
    if wants_json:
        response: HttpResponse = JsonResponse({"error": message, "fields": {}}, status=429)
    else:
        response = render(request, "accounts/locked.html", {"message": message}, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
