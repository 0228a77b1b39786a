"""Browser fixtures: Debian's Chromium driven by Playwright; screenshots kept as artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are ordinary blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") or os.environ.get("DISTILLERY_REQUIRE_SERVICES"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A script or style the Content-Security-Policy blocks only shows as a console message.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    page.js_errors = errors
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base: str, username: str = "alice", password: str = "alice-pw-123") -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")  # the nav holds a logout form too
    page.wait_for_load_state()


def plot_data(page, element_id: str) -> list[dict]:
    """The traces Plotly drew in `element_id` (x, y, z, type, name, mode, marker symbol)."""
    # Arrow functions, not bare expressions: Playwright polls a bare one with eval(), which the
    # pages' Content-Security-Policy (script-src 'self') refuses.
    page.wait_for_function(f"() => document.getElementById('{element_id}') && "
                           f"document.getElementById('{element_id}').data")
    return page.evaluate(f"document.getElementById('{element_id}').data.map(t => ({{x: t.x, y: t.y, z: t.z, "
                         "type: t.type, name: t.name, mode: t.mode, symbol: t.marker && t.marker.symbol}))")
