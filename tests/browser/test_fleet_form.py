"""The dashboard shows the fleet (issue 10, item 5): the submit form offers what the live worker of
`proxns serve` has (its CPU, digits and synthetic; no card, no CIFAR-10 files), and a job's page says
where it ran (device, CPU model, precision)."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By

from proxns_core.measure import cpu_name

from .conftest import open_page, sign_in, wait_for

pytestmark = pytest.mark.browser

TINY_AUTO = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "width": 0.125,
    "epochs": 1,
    "batch_size": 64,
    "train_subset": 128,
    "test_subset": 64,
    "device": "auto",
}


def test_the_form_offers_what_the_live_worker_has_and_the_job_page_says_where_it_ran(
    browser, live_server: str, admin_token: str, api: httpx.Client
) -> None:
    sign_in(browser, live_server, admin_token)
    fleet = wait_for(
        lambda: (f := api.get("/api/meta").json()["fleet"])["live_workers"] == 1 and f,
        60,
        "the worker to register",
    )
    assert fleet["datasets"] == ["digits", "synthetic"] and fleet["device_types"] == ["cpu"]

    open_page(browser, f"{live_server}/#/new")
    panel = wait_for(lambda: browser.find_element(By.ID, "fleet-panel"), what="the fleet panel")
    assert panel.get_attribute("data-state") == "live"
    assert (
        browser.find_element(By.CSS_SELECTOR, "#fleet-panel .fleet-title").text
        == "1 live worker can take jobs."
    )
    assert browser.find_element(By.ID, "fleet-devices").text == f"{cpu_name()} (cpu)"
    assert browser.find_element(By.ID, "fleet-datasets").text == "digits, synthetic"
    options = {
        o.get_attribute("value"): (o.text, o.get_attribute("disabled") is not None)
        for o in browser.find_elements(By.CSS_SELECTOR, "#job-dataset option")
    }
    assert options["digits"] == ("digits", False) and options["synthetic"] == ("synthetic", False)
    for name in ("cifar10", "cifar100", "svhn"):
        assert options[name] == (f"{name} (unavailable)", True)
    assert (
        "Unavailable on the live workers: cifar10, cifar100, svhn"
        in browser.find_element(By.ID, "datasets-unavailable").text
    )
    devices = [
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#job-device-options option")
    ]
    assert devices == ["auto", "cpu"]  # no card on this worker: no cuda suggestions
    # The hardware settings sit together; unset booleans are "auto" (decided by the device).
    legends = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "fieldset legend")]
    assert "Hardware" in legends
    for name in ("channels_last", "cuda_graphs"):
        labels = [o.text for o in browser.find_elements(By.CSS_SELECTOR, f"#job-{name} option")]
        assert labels == ["auto", "on", "off"], (name, labels)
    precisions = [
        o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#job-precision option")
    ]
    assert precisions[-4:] == ["auto", "fp32", "bf16", "fp16"]
    assert f"Live workers offer: {cpu_name()} (cpu)" in browser.find_element(By.ID, "job-device-hint").text

    # A device-auto job runs on the worker's CPU, and its page says so.
    job = api.post("/api/jobs", json=TINY_AUTO).json()
    wait_for(
        lambda: api.get(f"/api/jobs/{job['id']}").json()["status"] == "succeeded", 150, "the job to succeed"
    )
    open_page(browser, f"{live_server}/#/jobs/{job['id']}")

    def ran_on() -> str:
        facts = {  # textContent: the labels are upper-cased by CSS
            dt.get_attribute("textContent"): dd.get_attribute("textContent")
            for dt, dd in zip(
                browser.find_elements(By.CSS_SELECTOR, ".facts dt"),
                browser.find_elements(By.CSS_SELECTOR, ".facts dd"),
                strict=True,
            )
        }
        return facts.get("Ran on", "")

    assert wait_for(ran_on, what="the Ran on fact") == f"cpu · {cpu_name()} · fp32"
