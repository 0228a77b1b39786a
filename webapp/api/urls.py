"""The REST API's URLs: django-ninja's routes (webapp/api/site.py), then a JSON 404 for anything else.

A method a route does not offer answers 405 in the API's error shape (ninja's own answer is plain
text, and its schema and docs pages answer any method).
"""

import functools

from django.urls import re_path

from webapp.api import views
from webapp.api.http import error
from webapp.api.site import api

NINJA_PAGES = ("openapi-json", "openapi-view")  # /api/schema.json and /api/docs: GET only


def _json_405(view, get_only: bool = False):
    @functools.wraps(view)  # keeps ninja's csrf_exempt flag
    def wrapper(request, *args, **kwargs):
        if get_only and request.method not in ("GET", "HEAD"):
            response = error(f"{request.method} is not allowed here; use GET.", 405)
            response["Allow"] = "GET"
            return response
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response["Allow"]
            response = error(f"{request.method} is not allowed here; use {allowed}.", 405)
            response["Allow"] = allowed
        return response

    return wrapper


def _routes():
    patterns, _, namespace = api.urls
    assert namespace == app_name, "webapp/api/site.py's urls_namespace must be this module's app_name"
    for pattern in patterns:
        if pattern.name != "api-root":  # ninja's root answers an HTML 404; not_found below answers ours
            pattern.callback = _json_405(pattern.callback, get_only=pattern.name in NINJA_PAGES)
            yield pattern


app_name = "api"
urlpatterns = [
    *_routes(),
    # Last: a malformed id (/api/experiments/-1/) or an unknown path gets the error shape, not an HTML page.
    re_path(r"^", views.not_found, name="not_found"),
]
