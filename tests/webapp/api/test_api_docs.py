"""The API's Swagger UI page at /api/docs runs from our own static files (no CDN), under our CSP."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from django.conf import settings


class Assets(HTMLParser):
    """The URLs a page loads (scripts, stylesheets, icons) and its inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.urls.append(found["src"])
            else:
                self.inline_scripts.append(found)
        elif tag == "link" and found.get("href"):
            self.urls.append(found["href"])
        elif tag in ("img", "iframe") and found.get("src"):
            self.urls.append(found["src"])


def test_the_docs_page_loads_only_our_static_files_and_they_are_served(client, db):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = Assets()
    page.feed(response.content.decode())
    assert {"swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"} <= {u.rsplit("/", 1)[-1] for u in page.urls}
    for url in page.urls:
        assert url.startswith(settings.STATIC_URL), url  # no CDN: users run this inside closed networks
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content]), url
    # script-src 'self': no inline script runs; the settings block is JSON data, not code
    assert [s.get("type") for s in page.inline_scripts] == ["application/json"]
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_docs_page_reads_the_served_schema(client, db):
    settings_block = re.search(r'<script type="application/json" id="swagger-settings">(.*?)</script>',
                               client.get("/api/docs").content.decode(), re.S)
    assert settings_block and '"url": "/api/schema.json"' in settings_block.group(1)


def test_the_tokens_page_links_the_docs(alice_client):
    assert b'href="/api/docs"' in alice_client.get("/accounts/tokens/").content
