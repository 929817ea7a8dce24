"""The experiment page of a budget search (issue 12, item 3): the budget, its status and reason, a link
to the best job, one line per point, and its jobs on the plot; an experiment without a search shows no
search section. Runs on ``proxns serve`` (SQLite, filesystem broker, one real worker)."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By

from .conftest import sign_in, wait_for

pytestmark = pytest.mark.browser

BASE = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "width": 0.125,
    "epochs": 1,
    "train_subset": 128,
    "test_subset": 64,
    "device": "cpu",
    "lam": 0.4,
    "beta": 10.0,
}


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    sign_in(browser, live_server, admin_token)


def _open(browser, url: str) -> None:
    browser.get("about:blank")
    browser.get(url)
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "main#view > *:not(noscript)"), what=f"{url}")


@pytest.mark.slow
def test_a_search_shows_its_budget_outcome_best_job_and_points(browser, live_server, api) -> None:
    search = {"target": "pruned_fraction", "value": 0.995, "tolerance": 0.002, "max_jobs": 2, "parallel": 2}
    created = api.post("/api/experiments", json={"name": "browser budget", "base": BASE, "search": search})
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    _open(browser, f"{live_server}/#/experiments/{exp_id}")
    section = wait_for(lambda: browser.find_element(By.ID, "experiment-search"), what="the search section")
    assert "99.5 % ± 0.2 % of the channels pruned" in section.text
    wait_for(
        lambda: browser.find_element(By.ID, "experiment-search").get_attribute("data-status") == "closest",
        timeout=180,
        what="the search to end",
    )
    exp = api.get(f"/api/experiments/{exp_id}").json()
    section = browser.find_element(By.ID, "experiment-search")
    assert exp["search_state"]["reason"] in section.text
    best = browser.find_element(By.ID, "search-best")
    assert best.get_attribute("href").endswith(f"#/jobs/{exp['search_state']['best_job_id']}")
    assert len(section.find_elements(By.CSS_SELECTOR, ".search-points li")) == len(exp["jobs"]) == 2
    plotted = wait_for(
        lambda: (
            len(json.loads(browser.find_element(By.ID, "headline-plot").get_attribute("data-points"))) == 2
        ),
        what="both jobs on the plot",
    )
    assert plotted


def test_an_experiment_without_a_search_has_no_search_section(browser, live_server, api) -> None:
    created = api.post("/api/experiments", json={"name": "plain", "base": {**BASE, "epochs": 1}})
    assert created.status_code == 201, created.text
    _open(browser, f"{live_server}/#/experiments/{created.json()['id']}")
    wait_for(lambda: browser.find_element(By.ID, "experiment-jobs-table"), what="the jobs table")
    assert not browser.find_elements(By.ID, "experiment-search")
