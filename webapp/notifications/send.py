"""Sending one notification: an e-mail through Django's mail framework, or a signed webhook POST.

Webhook bodies are Slack-compatible ({"text": ...} plus our own fields) and carry
`X-Distillery-Signature: sha256=<hex HMAC-SHA256 of the raw body under the hook's secret>`, so a
receiver can check the message came from this server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from webapp.notifications import addresses

TIMEOUT = 10  # seconds a webhook receiver gets to answer


class SendError(Exception):
    """The message did not go out; the text says why (kept on the Delivery row)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer, not a new address to post to (it could point inside)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


def post_webhook(url: str, secret: str, payload: dict[str, Any], delivery_id: str = "") -> None:
    refused = addresses.problem(url)  # again at send time: the name may resolve elsewhere by now
    if refused:
        raise SendError(refused)
    body = body_of(payload)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "Distillery-Webhook/1",
        "X-Distillery-Event": str(payload.get("event", "")), "X-Distillery-Delivery": delivery_id,
        "X-Distillery-Signature": signature(secret, body)})
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:  # http(s) to a public host (addresses.py)
            if not 200 <= response.status < 300:
                raise SendError(f"The receiver answered HTTP {response.status}.")
    except urllib.error.HTTPError as exc:
        raise SendError(f"The receiver answered HTTP {exc.code}.") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SendError(f"Could not reach the receiver: {getattr(exc, 'reason', exc)}.") from None


def send_email(address: str, payload: dict[str, Any]) -> None:
    if not address:
        raise SendError("The account has no e-mail address.")
    lines = [payload["text"], ""]
    if payload.get("url"):
        lines.append(payload["url"])
    try:
        send_mail(payload.get("title") or payload["text"][:120], "\n".join(lines),
                  getattr(settings, "DEFAULT_FROM_EMAIL", None), [address], fail_silently=False)
    except Exception as exc:  # SMTP errors come in many classes
        raise SendError(f"The mail server refused it: {exc}") from None
