"""The API docs (/docs, Swagger UI) render in a browser that can reach nothing but the API.

A browser of its own (the session's ``browser`` has normal network access) sends every request that
is not for the loopback address to a proxy port where nothing listens, and resolves no host name,
so a page that needs a CDN stays blank here, online machine or not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .conftest import free_port, start_chromium, wait_for

pytestmark = pytest.mark.browser

#: Where a stock FastAPI app loads Swagger UI from; the offline browser must fail to fetch it.
CDN_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Headless Chromium that reaches 127.0.0.1 only, logging every request it sends."""
    # Everything but loopback goes to a closed local port; no host name resolves either.
    driver = start_chromium(
        tmp_path_factory.mktemp("chrome-offline-profile"),
        f"--proxy-server=http://127.0.0.1:{free_port()}",
        "--proxy-bypass-list=127.0.0.1;localhost",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        logs=("browser", "performance"),
    )
    yield driver
    driver.quit()


def open_fresh(browser, url: str) -> None:
    browser.get("about:blank")
    browser.get_log("performance")  # drop what earlier pages sent
    browser.get_log("browser")
    browser.get(url)


def requested_urls(browser) -> list[str]:
    """Every http(s)/ws URL the browser asked for since the last call, blocked requests included."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss"):
                urls.append(url)
    return urls


def loaded_resources(browser) -> list[dict]:
    return browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => ({name: e.name, type: e.initiatorType}))"
    )


def test_offline_browser_cannot_reach_a_cdn(offline_browser, live_server):
    """The set-up the docs tests rely on: a CDN request fails here, while the API answers."""
    open_fresh(offline_browser, f"{live_server}/healthz")
    result = offline_browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {mode: 'no-cors'}).then(() => done('reached'), e => done('failed: ' + e));",
        CDN_URL,
    )
    assert result.startswith("failed"), result


def test_swagger_ui_renders_the_operations_from_local_files_only(offline_browser, live_server, output_dir):
    open_fresh(offline_browser, f"{live_server}/docs")
    wait_for(
        lambda: offline_browser.find_elements(
            "css selector", ".opblock .opblock-summary-path[data-path='/api/jobs']"
        ),
        what="Swagger UI's operation block for /api/jobs",
    )
    methods = {
        e.text.strip()
        for e in offline_browser.find_elements("css selector", ".opblock-summary-method")
        if e.text.strip()
    }
    assert {"GET", "POST"} <= methods
    offline_browser.save_screenshot(str(output_dir / "docs-offline.png"))

    resources = loaded_resources(offline_browser)
    by_name = {r["name"]: r["type"] for r in resources}
    assert by_name[f"{live_server}/docs/assets/swagger-ui-bundle.js"] == "script"
    assert by_name[f"{live_server}/docs/assets/swagger-ui.css"] == "link"
    assert f"{live_server}/openapi.json" in by_name
    assert [r for r in resources if not r["name"].startswith(live_server + "/")] == []
    # Requests that failed leave no resource entry in some browsers: the request log has them all.
    urls = requested_urls(offline_browser)
    assert [u for u in urls if not u.startswith(live_server + "/")] == []
    assert [e for e in offline_browser.get_log("browser") if e["level"] == "SEVERE"] == []
