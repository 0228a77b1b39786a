"""The API's Swagger UI page renders every operation in a real browser, under the pages' CSP, from our files."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser]


def test_the_swagger_page_draws_every_operation_without_csp_errors(page, live_server, transactional_db):
    from tests.webapp.contract import document

    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}/api/docs")
    operations = sum(len(item) for item in document()["paths"].values())
    page.wait_for_function(f"() => document.querySelectorAll('.opblock').length >= {operations}")
    screenshot(page, "api-docs")
    assert page.js_errors == [] and outside == []
