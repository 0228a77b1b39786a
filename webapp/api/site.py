"""The REST API under /api/: one django-ninja API, its OpenAPI document and its Swagger UI page.

django-ninja generates /api/schema.json from the operations: their parameters, the ninja Schemas
of their bodies and answers (schemas.py, bodies.py) and the bearer-token scheme. The form-backed
bodies are validated by the web forms, not by ninja, so their models (generated from those forms)
join the document's components here, with the tracked-run bodies a view validates itself. /api/docs is ninja's Swagger UI page, served from ninja's
own static files (no CDN: 'ninja' is in INSTALLED_APPS).
"""

from __future__ import annotations

import functools
from typing import Any

from django.urls import reverse
from ninja import NinjaAPI, Swagger
from ninja.openapi.schema import REF_TEMPLATE
from ninja.schema import NinjaGenerateJsonSchema

from webapp.api import http, views, views_from_config, views_registry, views_tracking
from webapp.api.bodies import documented_bodies

DESCRIPTION = ("Knowledge-distillation experiments. Authenticate with `Authorization: Bearer <token>` (a token from "
               "the API tokens page); errors are {\"error\": message, \"fields\": {field: [messages]}}.")


class DistilleryAPI(NinjaAPI):
    def get_root_path(self, path_params: dict[str, Any]) -> str:
        # ninja's root URL answers Django's HTML 404; ours is the API's JSON 404 (urls.py), so find the root by
        # the schema's URL instead.
        return reverse(f"{self.urls_namespace}:openapi-json").removesuffix(self.openapi_url.lstrip("/"))

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None):
        return _document(self, path_prefix if path_prefix is not None else self.get_root_path(path_params or {}))


@functools.cache
def _document(api: NinjaAPI, path_prefix: str) -> dict[str, Any]:
    """ninja's document plus the bodies views read themselves (built once: operations and forms do not change)."""
    document = NinjaAPI.get_openapi_schema(api, path_prefix=path_prefix)
    schemas = document["components"]["schemas"]
    for name, model in documented_bodies().items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return document


api = DistilleryAPI(
    title="Distillery API", version="2.0", description=DESCRIPTION, urls_namespace="api",
    openapi_url="/schema.json", docs_url="/docs", docs=Swagger(),
    auth=http.BearerToken(), parser=http.UntrustedJsonParser())
http.install(api)
for module in (views, views_from_config, views_registry, views_tracking):
    api.add_router("", module.router)
