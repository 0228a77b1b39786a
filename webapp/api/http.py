"""The API's edge: bearer-token authentication, one JSON error shape, safe body parsing.

Every answer that is not a success is `{"error": message, "fields": {field: [messages]}}`
(`fields` empty when no single field is to blame), with a 4xx status; no input gives a 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from distill_core.untrusted import UntrustedInput, loads
from webapp.api.models import ApiToken, hash_token

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
MAX_JSON_BYTES = 1024 * 1024
LAST_USED_RESOLUTION = timedelta(minutes=5)


class ApiError(Exception):
    """Raised inside a view to answer with the error shape."""

    def __init__(self, message: str, status: int = 400, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message, self.status, self.fields = message, status, fields or {}


def error(message: str, status: int = 400, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    response = JsonResponse({"error": message, "fields": fields or {}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="distillery"'
    return response


def form_error(form) -> JsonResponse:
    """A 400 from a Django form's errors: non-field errors in `error`, the rest in `fields`."""
    errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    general = errors.pop("__all__", [])
    message = " ".join(general) or "Some fields are invalid; see `fields`."
    return error(message, 400, errors)


def authenticate(request: HttpRequest):
    """The user of a valid `Authorization: Bearer <token>` header, else None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def api_view(methods: dict[str, Callable] | None = None, *, public: bool = False):
    """Decorate a dispatcher: method check (405), bearer auth (401), ids in range, errors as JSON.

    Use either on a plain view (`@api_view()`) or give {"GET": fn, "POST": fn} to route by method.
    """

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # no cookies are read: a bearer token cannot be sent by another site's form
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            handlers = methods or {"GET": view}
            handler = handlers.get(request.method)
            if handler is None:
                response = error(f"{request.method} is not allowed here; use {', '.join(handlers)}.", 405)
                response["Allow"] = ", ".join(handlers)
                return response
            if not public:
                user = authenticate(request)
                if user is None:
                    return error("Authentication required: send `Authorization: Bearer <token>` with a token "
                                 "from the API tokens page.", 401)
                request.user = user
            if any(isinstance(v, int) and not 0 < v <= MAX_ID for v in kwargs.values()):
                return error("Not found.", 404)
            try:
                return handler(request, *args, **kwargs)
            except ApiError as exc:
                return error(exc.message, exc.status, exc.fields)
            except Http404:
                return error("Not found.", 404)
            except MultiPartParserError as exc:
                return error(f"Malformed multipart body: {str(exc)[:200]}")
            except RequestDataTooBig as exc:
                return error(f"The body is too large: {str(exc)[:200]}", 413)
            except SuspiciousOperation as exc:  # too many fields or files
                return error(f"Request refused: {str(exc)[:200]}")

        return wrapper

    return decorate


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (ApiError 415/413/400 otherwise)."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(f"Send a JSON body with Content-Type: application/json (got {content_type[:60] or 'none'!r}).",
                       415)
    if len(request.body) > MAX_JSON_BYTES:
        raise ApiError(f"The JSON body is larger than {MAX_JSON_BYTES // 1024} KB.", 413)
    try:
        data = loads(request.body)
    except UntrustedInput as exc:  # bad JSON, NUL, unpaired surrogates, deep nesting, huge integers
        raise ApiError(exc.message, fields={exc.field[:100]: [exc.message]} if exc.field else None) from None
    if not isinstance(data, dict):
        raise ApiError("The JSON body must be an object.")
    return data


def scalar_fields(data: dict[str, Any], names: list[str], ids: tuple[str, ...] = ()) -> dict[str, str]:
    """Form data from JSON values: scalars only, ids within the database's range.

    Lists and objects would be turned into text by the form fields; refuse them instead.
    """
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ApiError(f"Unknown field(s): {', '.join(repr(n)[:60] for n in unknown[:10])}.",
                       fields={n[:100]: ["Unknown field."] for n in unknown[:10]})
    out: dict[str, str] = {}
    bad: dict[str, list[str]] = {}
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            bad[name] = ["Must be a string or a number, not a list or an object."]
        elif isinstance(value, bool):
            # "true"/"false" read right in a checkbox (BooleanField) and in a yes/no choice (t2_scaling);
            # the old "on"/"" turned false into a blank choice, i.e. the default (true).
            out[name] = "true" if value else "false"
        elif name in ids and (isinstance(value, float) or not _id_in_range(value)):
            bad[name] = [f"Must be the integer id of an existing object (got {str(value)[:40]!r})."]
        else:
            out[name] = str(value)
    if bad:
        raise ApiError("Some fields are invalid; see `fields`.", fields=bad)
    return out


def _id_in_range(value: Any) -> bool:
    text = str(value).strip()
    return text.isascii() and text.isdecimal() and len(text) < 20 and 0 < int(text) <= MAX_ID


def int_param(request: HttpRequest, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > 20 or not (raw.isascii() and raw.removeprefix("-").isdecimal()):
        raise ApiError(f"{name} must be an integer (got {raw[:40]!r}).", fields={name: ["Must be an integer."]})
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ApiError(f"{name} must be between {minimum} and {maximum} (got {value}).",
                       fields={name: [f"Must be between {minimum} and {maximum}."]})
    return value
