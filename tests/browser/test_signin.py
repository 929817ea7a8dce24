"""Signing in to the dashboard with an API token, and what a signed-out browser sees."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from .conftest import sign_in, wait_for

pytestmark = pytest.mark.browser

DATA_PAGES = ["#/", "#/experiments", "#/new", "#/sweep", "#/jobs/1", "#/experiments/1"]


def stored_token(browser) -> str | None:
    return browser.execute_script("return localStorage.getItem('proxns-token')")


def sign_in_next(browser) -> str | None:
    """The `next` of the sign-in page the browser shows, or None when it shows another page."""
    fragment = urlsplit(browser.current_url).fragment
    path, _, query = fragment.partition("?")
    if path != "/sign-in" or not browser.find_elements(By.ID, "signin-token"):
        return None
    return parse_qs(query).get("next", [""])[0]


def open_fresh(browser, url: str) -> None:
    browser.get("about:blank")
    browser.get(url)


def is_expected_401(entry: dict) -> bool:
    """Chromium logs every non-2xx response; the 401s these tests provoke are intended."""
    return entry.get("source") == "network" and "status of 401" in entry["message"]


def test_the_api_needs_a_token_but_the_page_and_health_check_do_not(live_server, api):
    assert httpx.get(f"{live_server}/healthz", timeout=10).status_code == 200
    assert httpx.get(f"{live_server}/", timeout=10).status_code == 200
    assert httpx.get(f"{live_server}/js/auth.js", timeout=10).status_code == 200
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = httpx.get(f"{live_server}/api/jobs", headers=headers, timeout=10)
        assert response.status_code == 401, response.text
        assert response.json()["detail"]
    me = api.get("/api/me")
    assert me.status_code == 200, me.text
    assert me.json()["is_admin"] is True


def test_every_data_page_leads_to_the_sign_in_page_when_signed_out(browser, live_server):
    for token in (None, "not-a-valid-token"):  # no token at all, then one the server refuses
        sign_in(browser, live_server, token)
        for page in DATA_PAGES:
            open_fresh(browser, f"{live_server}/{page}")
            nxt = wait_for(lambda: sign_in_next(browser), what=f"the sign-in page instead of {page}")
            assert nxt == page
            assert not browser.find_elements(By.CSS_SELECTOR, ".error-box")
            assert stored_token(browser) == token  # nothing is cleared behind the user's back
            assert browser.find_element(By.ID, "sign-in-link").is_displayed()
            assert not browser.find_elements(By.ID, "sign-out")


def test_sign_in_with_a_wrong_then_the_right_token_and_sign_out(
    browser, live_server, api, admin_token, output_dir
):
    sign_in(browser, live_server, None)
    browser.get_log("browser")

    # Signed out, the jobs list leads to the sign-in page, focused on the token field.
    open_fresh(browser, f"{live_server}/#/")
    assert wait_for(lambda: sign_in_next(browser), what="the sign-in page") == "#/"
    assert browser.title.startswith("Sign in")
    field = browser.find_element(By.ID, "signin-token")
    assert field.get_attribute("type") == "password"
    label = browser.find_element(By.CSS_SELECTOR, "label[for='signin-token']")
    assert label.text.strip()
    help_text = browser.find_element(By.ID, "view").text
    assert "proxns user create" in help_text and "var/admin-token" in help_text
    wait_for(lambda: browser.switch_to.active_element.get_attribute("id") == "signin-token", what="focus")

    # A wrong token: the 401 message beside the field, with the keyboard alone.
    field.send_keys("not-a-valid-token", Keys.ENTER)
    error = browser.find_element(By.ID, "signin-token-error")
    message = wait_for(lambda: error.text.strip(), what="the 401 message")
    assert "did not accept" in message
    assert error.get_attribute("aria-live")
    assert error.find_element(By.XPATH, "..") == field.find_element(By.XPATH, "..")  # the same field
    assert "signin-token-error" in field.get_attribute("aria-describedby")
    assert field.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element.get_attribute("id") == "signin-token"
    assert stored_token(browser) is None
    assert sign_in_next(browser) == "#/"
    browser.save_screenshot(str(output_dir / "sign-in-refused.png"))

    # The right token: stored, and the jobs list appears with the user's name in the header.
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(admin_token)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#jobs-body > *"), what="the jobs list after sign-in"
    )
    assert urlsplit(browser.current_url).fragment == "/"
    assert stored_token(browser) == admin_token
    name = api.get("/api/me").json()["name"]
    assert wait_for(lambda: browser.find_element(By.ID, "session-name").text, what="the name") == name
    assert not browser.find_elements(By.CSS_SELECTOR, ".error-box")
    browser.save_screenshot(str(output_dir / "signed-in.png"))

    # "Sign out" forgets the token and returns to the sign-in page.
    browser.find_element(By.ID, "sign-out").click()
    wait_for(lambda: sign_in_next(browser) is not None, what="the sign-in page after signing out")
    assert stored_token(browser) is None
    assert browser.find_element(By.ID, "sign-in-link").is_displayed()
    assert not browser.find_elements(By.ID, "sign-out")

    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and not is_expected_401(e)] == []


def test_signing_in_returns_to_the_page_asked_for_and_refuses_foreign_next(browser, live_server, admin_token):
    for asked, lands in (("#/experiments", "/experiments"), ("#/sign-in?next=https://evil.example/", "/")):
        sign_in(browser, live_server, None)
        open_fresh(browser, f"{live_server}/{asked}")
        field = wait_for(lambda: browser.find_element(By.ID, "signin-token"), what="the sign-in form")
        field.send_keys(admin_token, Keys.ENTER)
        wait_for(
            lambda lands=lands: urlsplit(browser.current_url).fragment == lands, what=f"{lands} after sign-in"
        )
        assert urlsplit(browser.current_url).netloc == urlsplit(live_server).netloc
    sign_in(browser, live_server, None)
