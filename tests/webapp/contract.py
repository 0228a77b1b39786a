"""Check an API answer against /api/schema.json: its status is documented and its JSON body matches.

tests/webapp/conftest.py runs `check` on every /api/ response a test client receives, so every API
test of the suite is also a contract test of the schema.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema import Draft202012Validator


class ContractError(AssertionError):
    """An API answer the schema does not describe."""


class Contract:
    """The OpenAPI document, compiled: path templates to match and one validator per response schema."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        # Concrete paths before templated ones (OpenAPI's matching rule): from-config/ is not an {pk}.
        templates = sorted(document["paths"].items(), key=lambda entry: entry[0].count("{"))
        self.paths = [(re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(t)) + "$"), t, item)
                      for t, item in templates]
        self._validators: dict[str, Draft202012Validator] = {}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any] | None] | None:
        """(path template, operation or None when the path has no such method); None: not an API path."""
        for pattern, template, item in self.paths:
            if pattern.match(path):
                return template, item.get(method.lower())
        return None

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            # The response schema with the document's components beside it, so "#/components/..." resolves.
            self._validators[key] = Draft202012Validator({**schema, "components": self.document["components"]})
        return self._validators[key]

    def response_schema(self, operation: dict[str, Any], status: int) -> dict[str, Any]:
        responses = operation["responses"]
        spec = responses.get(str(status)) or responses.get("default")
        if spec is None:
            raise ContractError(f"status {status} is not documented (documented: {', '.join(responses)})")
        if "$ref" in spec:
            spec = self.document["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
        return spec["content"]["application/json"]["schema"]

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        """Raise ContractError when the answer to `method path` does not match the schema."""
        found = self.operation(method, path)
        if found is None:
            return  # not a route of the API (Django's own 404 page for a malformed URL)
        template, operation = found
        where = f"{method} {path} ({template}) answered {status}"
        if operation is None:  # a method the path does not offer: 405 in the error shape
            if status != 405:
                raise ContractError(f"{where}; the schema has no {method} there, so 405 was expected")
            schema = {"$ref": "#/components/schemas/Error"}
        else:
            try:
                schema = self.response_schema(operation, status)
            except ContractError as exc:
                raise ContractError(f"{where}: {exc}") from None
        if content_type.split(";")[0].strip() != "application/json":
            raise ContractError(f"{where} with Content-Type {content_type!r}, not application/json")
        errors = sorted(self.validator(schema).iter_errors(json.loads(body)), key=lambda e: list(e.absolute_path))
        if errors:
            shown = "; ".join(f"at {'/'.join(map(str, e.absolute_path)) or 'the top'}: {e.message[:300]}"
                              for e in errors[:5])
            raise ContractError(f"{where}, a body the schema does not describe: {shown}")


def document() -> dict[str, Any]:
    """The OpenAPI document django-ninja generates for /api/schema.json (webapp/api/site.py), as served (JSON)."""
    from webapp.api.site import api

    return json.loads(json.dumps(api.get_openapi_schema()))


def value_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional input's schema without its null branch: the branch with the type, bounds and choices."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    assert len(branches) == 1, prop
    return branches[0]


@functools.cache
def api_contract() -> Contract:
    return Contract(document())


def check_response(response) -> None:
    """Validate a Django test client's response to an /api/ request (ignore everything else)."""
    path = response.request.get("PATH_INFO", "")
    if not path.startswith("/api/") or getattr(response, "streaming", False):
        return
    api_contract().check(response.request["REQUEST_METHOD"], path, response.status_code,
                         response.get("Content-Type", ""), response.content)
