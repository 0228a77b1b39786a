"""The OpenAPI document at /api/schema.json describes every API route."""

from __future__ import annotations

import json
import re

from webapp.api import urls as api_urls


def openapi_path(route: str) -> str:
    return "/api/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_the_schema_is_public_json_with_the_openapi_top_level_keys(client, db):
    response = client.get("/api/schema.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.") and {"openapi", "info", "paths", "components"} <= set(schema)
    assert schema["info"]["title"] and schema["info"]["version"]


def test_every_api_route_is_in_the_schema(client, db):
    paths = client.get("/api/schema.json").json()["paths"]
    routes = {openapi_path(str(p.pattern)) for p in api_urls.urlpatterns if p.name != "not_found"}
    assert routes == set(paths)


def test_every_reference_in_the_schema_resolves(client, db):
    schema = client.get("/api/schema.json").json()
    text = json.dumps(schema)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = schema
        for part in ref.split("/"):
            assert part in node, ref
            node = node[part]


def test_every_path_parameter_is_declared(client, db):
    for path, item in client.get("/api/schema.json").json()["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            assert operation["responses"]
