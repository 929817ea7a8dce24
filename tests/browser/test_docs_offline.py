"""The API docs (/docs, Swagger UI) render in a browser that can reach nothing but the API.

A browser of its own (the session's ``browser`` has normal network access) sends every request that
is not for the loopback address to a proxy port where nothing listens, and resolves no host name,
so a page that needs a CDN stays blank here, online machine or not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import CHROME_ARGS, find_browser, free_port, unavailable

pytestmark = pytest.mark.browser

#: Where a stock FastAPI app loads Swagger UI from; the offline browser must fail to fetch it.
CDN_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the page renders while polling
            last_error = exc
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last_error!r})")


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Headless Chromium that reaches 127.0.0.1 only, logging every request it sends."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable(f"selenium is not installed: {exc}")
    chrome, chromedriver = find_browser()
    if not chrome or not chromedriver:
        unavailable("no chromium/chromedriver found (run `make browser`)")
    options = Options()
    options.binary_location = chrome
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome-offline-profile')}")
    # Everything but loopback goes to a closed local port; no host name resolves either.
    options.add_argument(f"--proxy-server=http://127.0.0.1:{free_port()}")
    options.add_argument("--proxy-bypass-list=127.0.0.1;localhost")
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except WebDriverException as exc:
        unavailable(f"headless Chromium did not start: {exc.msg}")
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
