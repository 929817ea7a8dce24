"""Fixtures for the dashboard tests: a live `proxns serve` (API + worker) and headless Chromium.

Without a browser or the service these tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxns_testkit import REPO, free_port

ROOT = REPO
OUTPUT_DIR = ROOT / "test-output"
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--window-size=1366,900",
]


def unavailable(reason: str) -> None:
    """Fail under CI (the browser tests are part of `make test` there), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def find_browser() -> tuple[str | None, str | None]:
    """Paths of a Chromium binary and a matching chromedriver (Debian's packages first)."""
    chrome = next(
        (
            p
            for p in (
                "/usr/bin/chromium",
                shutil.which("chromium"),
                shutil.which("chromium-browser"),
                shutil.which("google-chrome"),
            )
            if p and Path(p).exists()
        ),
        None,
    )
    driver = next(
        (p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and Path(p).exists()), None
    )
    return chrome, driver


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


def start_chromium(
    profile: Path, *args: str, prefs: dict | None = None, logs: tuple[str, ...] = ("browser",)
):
    """Headless Chromium (``CHROME_ARGS`` plus ``args``) with a fresh ``profile``, logging ``logs``."""
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
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}", *args):
        options.add_argument(arg)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", dict.fromkeys(logs, "ALL"))
    try:
        return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except WebDriverException as exc:
        unavailable(f"headless Chromium did not start: {exc.msg}")


def wait_for(
    check: Callable[[], Any], timeout: float = 15, what: str = "condition", every: float = 0.2
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the page re-renders while polling: elements come and go
            last_error = exc
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last_error!r})")


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Headless Chromium with a fresh profile, console logging on and downloads to a temp folder."""
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_chromium(
        tmp_path_factory.mktemp("chrome-profile"),
        prefs={"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_window_size(1366, 900)
    driver.download_dir = downloads
    yield driver
    driver.quit()


def wait_serving(
    check: Callable[[], Any], proc: subprocess.Popen, log: Path, what: str, timeout: float
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the log if serve exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`proxns serve` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"`proxns serve` did not {what} in {timeout} s:\n{log.read_text()[-3000:]}")


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_serving(healthy, proc, log, "become healthy", timeout)


def wait_for_admin_token(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 90) -> str:
    """The admin token `proxns serve` writes on first start (``var/admin-token``), once it is there."""

    def token() -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""

    return wait_serving(token, proc, log, f"write an admin token to {path}", timeout)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`proxns serve` on a free port in a temp folder: SQLite, filesystem broker, one real worker.

    Yields its URL, the admin token it wrote to ``var/admin-token`` in that folder, and the folder.
    """
    proxns = Path(sys.executable).with_name("proxns")
    if not (ROOT / "api").is_dir() or not proxns.exists():
        unavailable("the service (api/ and the `proxns` console script) is not installed")
    if subprocess.run([str(proxns), "serve", "--help"], capture_output=True).returncode != 0:
        unavailable("`proxns serve` is not available")
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = workdir / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXNS_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(proxns), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker it starts goes down with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_healthy(url, proc, log)
        left = max(90 - (time.monotonic() - started), 5)
        token = wait_for_admin_token(workdir / "var" / "admin-token", proc, log, timeout=left)
        yield url, token, workdir
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:  # it exited already (a failed start, reported above)
            proc.wait()
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if OUTPUT_DIR.is_dir():
            shutil.copy(log, OUTPUT_DIR / "serve.log")


@pytest.fixture(scope="session")
def live_server(served: tuple[str, str]) -> str:
    """The URL of the live `proxns serve`."""
    return served[0]


@pytest.fixture(scope="session")
def admin_token(served: tuple[str, str]) -> str:
    """The token of the admin that `proxns serve` created on its first start."""
    return served[1]


@pytest.fixture(scope="session")
def store_url(served: tuple[str, str, Path]) -> str:
    """The SQLAlchemy URL of the live server's store (seed rows with ``proxns_testkit.seed``)."""
    return f"sqlite:///{served[2] / 'var' / 'proxns.db'}"


@pytest.fixture(scope="session")
def artifact_dir(served: tuple[str, str, Path]) -> Path:
    """The live server's artifact store."""
    return served[2] / "var" / "artifacts"


@pytest.fixture(scope="session")
def api(live_server: str, admin_token: str) -> Iterator[httpx.Client]:
    """An httpx client for the live API, signed in as the admin (``Authorization: Bearer …``)."""
    with httpx.Client(
        base_url=live_server, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10
    ) as client:
        yield client


def sign_in(browser, live_server: str, token: str | None) -> None:
    """Store `token` as the dashboard's API token in `browser` (None: sign out)."""
    browser.get(f"{live_server}/healthz")  # any page of the origin: localStorage is per origin
    if token is None:
        browser.execute_script("localStorage.removeItem('proxns-token')")
    else:
        browser.execute_script("localStorage.setItem('proxns-token', arguments[0])", token)


# ---------------------------------------------------------------- helpers the browser tests share


def open_page(browser, url: str, ready: str = "main#view > *:not(noscript)") -> None:
    """Load `url` afresh (a hash-only change would keep the old page's state) and wait for the
    element `ready` (a CSS selector; default: anything the view rendered)."""
    from selenium.webdriver.common.by import By

    browser.get("about:blank")
    browser.get(url)
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ready), what=f"{ready} on {url}")


def fill(browser, element_id: str, value: str) -> None:
    """Type `value` into the control with id `element_id` (pick it, for a select)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    el = browser.find_element(By.ID, element_id)
    if el.tag_name == "select":
        Select(el).select_by_value(value)
    else:
        el.clear()
        el.send_keys(value)


def full_page_screenshot(browser, path: Path) -> None:
    """Screenshot of the whole page, not only the window: grow the window to the page's height."""
    width, height = browser.get_window_size()["width"], browser.get_window_size()["height"]
    page_height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, page_height + 140), 6000))
    time.sleep(0.3)
    browser.save_screenshot(str(path))
    browser.set_window_size(width, height)


def is_favicon_404(entry: dict) -> bool:
    """Chromium asks the /healthz page `sign_in` opens for /favicon.ico (the dashboard's is favicon.svg)."""
    return "/favicon.ico" in entry["message"]


def severe_console_errors(browser, allow: Callable[[dict], bool] = lambda entry: False) -> list[dict]:
    """The console's errors since the last read, but those `allow` accepts."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and not allow(e)]


def wait_for_download(
    folder: Path, name_end: str, timeout: float = 20, prefix: str = "", after: float = 0.0
) -> Path:
    """The newest file downloaded into `folder` (shared by every test of the session) whose name
    starts with `prefix` and ends with `name_end`, written at or after `after` (a time.time())."""

    def done() -> Path | None:
        hits = [
            p
            for p in folder.iterdir()
            if p.name.startswith(prefix)
            and p.name.endswith(name_end)
            and p.stat().st_mtime >= after
            and p.stat().st_size > 0
        ]
        return max(hits, key=lambda p: p.stat().st_mtime) if hits else None

    return wait_for(done, timeout, what=f"a downloaded file ending {name_end!r}")
