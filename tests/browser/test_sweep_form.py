"""The job and sweep forms (issue 13, items 8 and 9): labels that say what a field does, suggestions
that follow the data set without overwriting what the user typed, per-method λ lists, the job count
from the server's dry run (equal to what submitting creates), and adding jobs to an experiment.

The live `proxns serve` offers digits and synthetic only (no CIFAR files), so digits is the data set
a new form opens with. Jobs the tests create are tiny and cancelled at once.
"""

from __future__ import annotations

import re

import httpx
import pytest
from selenium.webdriver.common.by import By

from .conftest import fill, open_page, sign_in, wait_for

pytestmark = pytest.mark.browser

#: A base that would train in seconds; the tests cancel its jobs anyway.
TINY = {"width": "0.125", "epochs": "1", "train_subset": "64", "test_subset": "32", "device": "cpu"}


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    sign_in(browser, live_server, admin_token)


def click(browser, element_id: str) -> None:
    """Click a control in the middle of the window (the sticky submit bar covers the bottom)."""
    el = browser.find_element(By.ID, element_id)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()


def page_screenshot(browser, path) -> None:
    """The whole page in one picture: the window grown to the page's height, then restored."""
    width, height = browser.get_window_size()["width"], browser.get_window_size()["height"]
    page_height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, page_height + 140), 6000))
    browser.save_screenshot(str(path))
    browser.set_window_size(width, height)


def value(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).get_attribute("value")


def label(browser, control_id: str) -> str:
    """The label's text, also for a field hidden for the chosen network or method."""
    el = browser.find_element(By.CSS_SELECTOR, f"label[for='{control_id}']")
    return el.get_attribute("textContent").strip()


def summary(browser) -> tuple[str, str]:
    """The count line beside the submit button: (state, text)."""
    el = browser.find_element(By.ID, "sweep-summary")
    return el.get_attribute("data-state") or "", el.text.strip()


def wait_counted(browser, text: str) -> None:
    """Wait until the dry run's answer reads `text` ("N jobs (…)")."""

    def counted() -> bool:
        state, shown = summary(browser)
        return state == "ready" and shown == text

    wait_for(counted, what=f"the count {text!r} (shown: {summary(browser)!r})")


def cancel_all(api: httpx.Client, jobs: list[dict]) -> None:
    """Cancel the test's jobs so the live worker is not kept busy (a finished one answers 409)."""
    for job in jobs:
        response = api.post(f"/api/jobs/{job['id']}/cancel")
        assert response.status_code in (200, 409), response.text


def console_errors(browser) -> list[dict]:
    """Severe console entries but the intended ones: a 422 from a dry run of invalid values, the
    failed request while the browser is offline, and the favicon.ico that Chromium asks of the
    /healthz page the sign-in fixture opens (the dashboard's own icon is favicon.svg)."""
    return [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE"
        and not (e.get("source") == "network" and "status of 422" in e["message"])
        and "ERR_INTERNET_DISCONNECTED" not in e["message"]
        and "/favicon.ico " not in e["message"]
    ]


def test_labels_say_what_a_field_does_and_suggestions_follow_the_data_set(
    browser, live_server: str, api: httpx.Client, output_dir
) -> None:
    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/new", "#job-form")

    # Item 9: no label is pydantic's title-cased field name ("Channel Multiple", "Precise Bn").
    assert label(browser, "job-channel_multiple") == "Round kept channels to a multiple of"
    assert label(browser, "job-precise_bn") == "Re-estimate BN statistics before testing"
    titles = {
        name: prop["title"]
        for name, prop in api.get("/api/meta").json()["schema"]["properties"].items()
        if " " in prop.get("title", "")
    }
    assert {"channel_multiple", "precise_bn", "batch_size", "lr_milestones"} <= set(titles)
    for name, title in titles.items():
        shown = label(browser, f"job-{name}")
        assert shown and shown != title, (name, shown)
        assert "Bn" not in shown.split() and "Flops" not in shown, (name, shown)

    # Item 9: with digits the form suggests a network and a length that run in seconds, not
    # VGG-19 ×1 for 160 epochs; λ on the method's scale.
    assert value(browser, "job-dataset") == "digits"
    digits = {"arch": "vgg", "depth": "11", "width": "0.25", "epochs": "20", "batch_size": "64", "lam": "0.5"}
    assert {f: value(browser, f"job-{f}") for f in digits} == digits
    note = browser.find_element(By.ID, "job-suggestion").text
    assert note.startswith("Suggested for digits:") and "epochs 20" in note
    browser.find_element(By.CSS_SELECTOR, "[data-field='epochs'][data-suggested='digits']")
    page_screenshot(browser, output_dir / "job-form-digits-suggestions.png")
    fill(browser, "job-method", "ns")
    assert value(browser, "job-lam") == "0.02"
    fill(browser, "job-method", "proxns")
    assert value(browser, "job-lam") == "0.5"

    # A value the user typed stays; the others follow the data set (synthetic: width 0.125, 10 epochs).
    fill(browser, "job-epochs", "3")
    fill(browser, "job-dataset", "synthetic")
    synthetic = {"depth": "11", "width": "0.125", "epochs": "3", "lam": ""}
    assert {f: value(browser, f"job-{f}") for f in synthetic} == synthetic
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-field='epochs'][data-suggested]")
    fill(browser, "job-dataset", "digits")
    assert (value(browser, "job-width"), value(browser, "job-epochs"), value(browser, "job-lam")) == (
        "0.25",
        "3",
        "0.5",
    )
    # Another network: its own depth and λ defaults, not the ones suggested for VGG.
    fill(browser, "job-arch", "resnet")
    assert (value(browser, "job-depth"), value(browser, "job-lam")) == ("", "")
    assert console_errors(browser) == []


def test_per_method_lists_count_on_the_server_and_submit_exactly_that(
    browser, live_server: str, api: httpx.Client, output_dir
) -> None:
    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/sweep", "#sweep-form")
    # The base's method is replaced by the method checkboxes; its λ is editable until λ is swept.
    assert not browser.find_element(By.ID, "base-method").is_displayed()
    assert "chosen below" in browser.find_element(By.ID, "base-method-swept").text
    assert browser.find_element(By.ID, "base-lam").is_enabled()
    assert value(browser, "base-lam") == ""  # the sweep's base leaves λ to the per-method lists
    wait_counted(browser, "1 job (proxns: 1)")

    fill(browser, "sweep-name", "browser test: per-method λ")
    for field, text in TINY.items():
        fill(browser, f"base-{field}", text)
    click(browser, "sweep-method-ns")
    # each method's λ list suggests values on its own scale for digits
    placeholder = {
        m: browser.find_element(By.ID, f"sweep-{m}-lam").get_attribute("placeholder")
        for m in ("ns", "proxns")
    }
    assert placeholder == {"ns": "e.g. 0.01, 0.02, 0.04", "proxns": "e.g. 0.25, 0.5, 1"}
    fill(browser, "sweep-ns-lam", "0.01, 0.02")
    fill(browser, "sweep-proxns-lam", "0.25, 0.5, 1")
    fill(browser, "sweep-seed", "0, 1")
    assert not browser.find_element(By.ID, "base-lam").is_enabled()
    assert browser.find_element(By.ID, "base-lam-swept").text == "swept below"
    # ns: 2 λ × 2 seeds, proxns: 3 λ × 2 seeds
    wait_counted(browser, "10 jobs (ns: 4, proxns: 6)")
    button = browser.find_element(By.CSS_SELECTOR, "#sweep-form button[type=submit]")
    assert button.text == "Submit 10 jobs"

    # A value the server refuses: its message beside that method's list, no count.
    fill(browser, "sweep-ns-lam", "0.01, 20")
    error = wait_for(lambda: browser.find_element(By.ID, "sweep-ns-lam-error").text, what="the λ message")
    assert "less than or equal to 10" in error, error
    assert summary(browser)[0] == "invalid"
    fill(browser, "sweep-ns-lam", "0.01, 0.02")
    wait_counted(browser, "10 jobs (ns: 4, proxns: 6)")
    assert browser.find_element(By.ID, "sweep-ns-lam-error").text == ""

    # Offline: the count says the server cannot be reached; back online it counts again.
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    try:
        fill(browser, "sweep-seed", "0, 1, 2")
        wait_for(
            lambda: (
                summary(browser)[0] == "error"
                and summary(browser)[1].startswith("Could not count the jobs: cannot reach the server")
            ),
            what="the network error",
        )
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
        browser.execute_cdp_cmd("Network.disable", {})
    fill(browser, "sweep-seed", "0, 1")
    wait_counted(browser, "10 jobs (ns: 4, proxns: 6)")
    page_screenshot(browser, output_dir / "sweep-form-per-method.png")

    # The same body straight to the API's dry run, then the form's submission: the same 10 jobs.
    base = {"dataset": "digits", "arch": "vgg", "depth": 11, "width": 0.125, "epochs": 1, "batch_size": 64}
    base |= {"train_subset": 64, "test_subset": 32, "device": "cpu"}
    sweep = {
        "method": ["proxns", "ns"],
        "seed": [0, 1],
        "by_method": {"ns": {"lam": [0.01, 0.02]}, "proxns": {"lam": [0.25, 0.5, 1]}},
    }
    dry = api.post("/api/experiments?dry_run=true", json={"name": "x", "base": base, "sweep": sweep})
    assert dry.status_code == 200, dry.text
    assert dry.json()["count"] == 10
    button.click()
    wait_for(
        lambda: re.search(r"#/experiments/\d+$", browser.current_url),
        what=f"the experiment page ({browser.find_element(By.ID, 'sweep-form').text[-600:]})",
    )
    exp = api.get(f"/api/experiments/{browser.current_url.rsplit('/', 1)[-1]}").json()
    cancel_all(api, exp["jobs"])
    configs = [j["config"] for j in exp["jobs"]]
    assert len(configs) == 10
    assert sorted({c["lam"] for c in configs if c["method"] == "ns"}) == [0.01, 0.02]
    assert sorted({c["lam"] for c in configs if c["method"] == "proxns"}) == [0.25, 0.5, 1.0]
    assert sorted((c["method"], c["lam"], c["seed"]) for c in configs) == sorted(
        (c["method"], c["lam"], c["seed"]) for c in dry.json()["jobs"]
    )
    assert {(c["epochs"], c["width"], c["depth"]) for c in configs} == {(1, 0.125, 11)}
    assert console_errors(browser) == []


def test_add_jobs_to_an_experiment_from_its_address(
    browser, live_server: str, api: httpx.Client, output_dir
) -> None:
    base = {
        "dataset": "digits",
        "arch": "vgg",
        "depth": 11,
        "width": 0.125,
        "epochs": 1,
        "device": "cpu",
        "train_subset": 64,
        "test_subset": 32,
        "method": "proxns",
    }
    made = api.post(
        "/api/experiments", json={"name": "browser test: add jobs", "base": base, "sweep": {"lam": [0.5]}}
    )
    assert made.status_code == 201, made.text
    exp = made.json()
    cancel_all(api, exp["jobs"])

    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/sweep?experiment={exp['id']}", "#sweep-form")
    assert browser.find_element(By.CSS_SELECTOR, "main h1").text == "Add to experiment browser test: add jobs"
    assert not browser.find_elements(By.ID, "sweep-name")
    # The base is the experiment's, unchanged by the data set's suggestions.
    prefilled = {
        f: value(browser, f"base-{f}") for f in ("depth", "width", "epochs", "train_subset", "device")
    }
    assert prefilled == {
        "depth": "11",
        "width": "0.125",
        "epochs": "1",
        "train_subset": "64",
        "device": "cpu",
    }
    assert browser.find_element(By.ID, "sweep-method-proxns").is_selected()

    # No method checked: said beside the checkboxes, nothing counted.
    click(browser, "sweep-method-proxns")
    error = wait_for(
        lambda: browser.find_element(By.ID, "sweep-method-error").text, what="the method message"
    )
    assert error == "Check at least one method."
    assert summary(browser) == ("invalid", "Fix the marked values to count the jobs.")
    click(browser, "sweep-method-proxns")
    fill(browser, "sweep-proxns-lam", "0.5, 1")  # 0.5 the experiment has already
    wait_counted(browser, "1 job (proxns: 1); 1 duplicate skipped")
    fill(browser, "sweep-proxns-lam", "0.5")
    wait_counted(browser, "0 jobs; 1 duplicate skipped: nothing new to add")
    button = browser.find_element(By.CSS_SELECTOR, "#sweep-form button[type=submit]")
    assert not button.is_enabled()
    fill(browser, "sweep-proxns-lam", "0.5, 1, 2")
    wait_counted(browser, "2 jobs (proxns: 2); 1 duplicate skipped")
    assert button.text == "Submit 2 jobs"
    browser.save_screenshot(str(output_dir / "sweep-form-add-jobs.png"))
    button.click()
    wait_for(lambda: browser.current_url.endswith(f"#/experiments/{exp['id']}"), what="the experiment page")
    after = api.get(f"/api/experiments/{exp['id']}").json()
    cancel_all(api, after["jobs"])
    assert sorted(j["config"]["lam"] for j in after["jobs"]) == [0.5, 1.0, 2.0]
    assert console_errors(browser) == []
