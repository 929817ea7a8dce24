"""The API docs (/docs) need no CDN: every file the page loads is served by the API itself."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from proxns_testkit import api_client, embedded_settings

#: Content type each kind of asset must be served with.
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


class _Links(HTMLParser):
    """The URLs a page loads by itself: ``<script src>`` and ``<link href>``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {"script": "src", "link": "href"}.get(tag)
        value = dict(attrs).get(attr) if attr else None
        if value:
            self.urls.append(value)


def loaded_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def api(tmp_path: Path) -> TestClient:
    """The real app, dashboard mounted at / (the default frontend), on a throwaway SQLite store."""
    with api_client(embedded_settings(tmp_path, frontend=True)) as client:
        yield client


def test_docs_page_loads_only_files_the_api_serves_with_their_content_types(api: TestClient) -> None:
    response = api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "ProxNS Lab" in response.text
    assert "http://" not in response.text and "https://" not in response.text  # no CDN
    assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text

    urls = loaded_urls(response.text)
    assert {Path(u).suffix for u in urls} == {".js", ".css", ".png"}
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), url
        assert len(asset.content) > 1000, url


def test_docs_stay_out_of_the_schema_and_the_dashboard_still_owns_the_root(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/jobs" in paths
    assert not [p for p in paths if p.startswith("/docs")]
    redirect = api.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
    root = api.get("/")
    assert root.status_code == 200 and "ProxNS Lab" in root.text and "swagger" not in root.text.lower()


def test_there_is_no_redoc_page_that_would_need_a_cdn(api: TestClient) -> None:
    """ReDoc fetches its logo from cdn.redoc.ly whatever it is told, so the API does not serve it."""
    assert api.get("/redoc").status_code == 404
