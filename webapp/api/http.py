"""The API's edge: bearer-token authentication, one JSON error shape, safe body parsing.

Every answer that is not a success is `{"error": message, "fields": {field: [messages]}}`
(`fields` empty when no single field is to blame), with a 4xx status; no input gives a 500.
`install` teaches a NinjaAPI this shape: its validation errors, authentication failures and
the exceptions of Django's body parsing all answer with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from distill_core.untrusted import UntrustedInput, loads
from webapp.api.models import ApiToken, hash_token

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


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>` with a token from the API tokens page (webapp/api/models.py)."""

    def __call__(self, request: HttpRequest):
        user = authenticate(request)
        if user is not None:
            request.user = user  # the views, forms and ownership checks read request.user
        return user

    def authenticate(self, request: HttpRequest, token: str):  # ninja's hook; __call__ reads the header itself
        return authenticate(request)


class UntrustedJsonParser(Parser):
    """JSON bodies through json_body: Content-Type, size and distill_core.untrusted's checks."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return json_body(request)


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


def refuse_unknown(data: dict[str, Any], names) -> None:
    """ApiError naming the inputs of `data` that are not among `names`."""
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ApiError(f"Unknown field(s): {', '.join(repr(n)[:60] for n in unknown[:10])}.",
                       fields={n[:100]: ["Unknown field."] for n in unknown[:10]})


def scalar_fields(data: dict[str, Any], names: list[str], ids: tuple[str, ...] = ()) -> dict[str, str]:
    """Form data from JSON values: scalars only, ids within the database's range.

    Lists and objects would be turned into text by the form fields; refuse them instead.
    """
    refuse_unknown(data, names)
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


def _field_name(loc: tuple) -> str:
    """`points.0` for pydantic's ("body", "payload", "points", 0, 1): the input, and the item of a list."""
    parts = list(loc[2:] if loc and loc[0] == "body" else loc[1:])
    index = next((i for i, part in enumerate(parts) if isinstance(part, int)), None)
    name = ".".join(str(p) for p in (parts if index is None else parts[:index + 1]))
    return name[:100] or "__all__"


def validation_error(exc: ValidationError) -> JsonResponse:
    """A 400 naming each invalid input; an invalid path id (0, beyond the id range) is simply not found."""
    if any(e.get("loc", ("",))[0] == "path" for e in exc.errors):
        return error("Not found.", 404)
    fields: dict[str, list[str]] = {}
    sentences = []
    for e in exc.errors:
        name, message = _field_name(tuple(e.get("loc", ()))), str(e.get("msg", "Invalid."))[:300]
        fields.setdefault(name, []).append(message)
        # webapp/api/params.py's messages name their input ("limit must be ..."); pydantic's do not.
        sentences.append(message if message.startswith(f"{name} ") else f"{name}: {message}.")
    return error(" ".join(sentences[:5]) if sentences else "Some fields are invalid; see `fields`.", 400, fields)


def _http_error(exc: HttpError) -> JsonResponse:
    # ninja turns a parser's exception into HttpError(400, "Cannot parse request body"); ours says why.
    cause = exc.__cause__
    if isinstance(cause, ApiError):
        return error(cause.message, cause.status, cause.fields)
    return error(str(exc), exc.status_code)


def install(api: NinjaAPI) -> None:
    """Answer every refusal of `api` with the error shape."""
    handlers = {
        ApiError: lambda exc: error(exc.message, exc.status, exc.fields),
        ValidationError: validation_error,
        HttpError: _http_error,
        AuthenticationError: lambda exc: error("Authentication required: send `Authorization: Bearer <token>` with a "
                                               "token from the API tokens page.", 401),
        Http404: lambda exc: error("Not found.", 404),
        MultiPartParserError: lambda exc: error(f"Malformed multipart body: {str(exc)[:200]}"),
        RequestDataTooBig: lambda exc: error(f"The body is too large: {str(exc)[:200]}", 413),
        SuspiciousOperation: lambda exc: error(f"Request refused: {str(exc)[:200]}"),  # too many fields or files
    }
    for exc_class, answer in handlers.items():
        api.add_exception_handler(exc_class, lambda request, exc, answer=answer: answer(exc))
