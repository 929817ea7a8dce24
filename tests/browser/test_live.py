"""A job's new epoch reaches its page through GET /api/events, with polling off (issue 13, item 7).

A running job is seeded straight into the live server's store (no worker runs it); the page is
opened with ``localStorage['proxns-poll'] = 'off'`` (pages load once, then rely on the stream), and
epoch rows are written into the store as a worker writes them. Each must appear on the accuracy
chart, and the page must not have fetched the job or its metrics again after its first load.
"""

from __future__ import annotations

import json
import time

import pytest
from selenium.webdriver.common.by import By

from proxns_core.spec import EpochMetrics
from proxns_testkit.seed import seed_jobs
from store.db import make_engine, make_sessionmaker
from store.queries import write_metrics

from .conftest import sign_in, wait_for

pytestmark = pytest.mark.browser

CONFIG = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "width": 0.125,
    "method": "proxns",
    "lam": 0.1,
    "epochs": 3,
}

#: Requests the page made so far, by path (the browser's resource timing entries).
REQUESTS_JS = """
return performance.getEntriesByType('resource')
  .map((e) => new URL(e.name).pathname)
  .filter((p) => p.startsWith('/api/'));
"""


def epoch(n: int, acc: float) -> EpochMetrics:
    return EpochMetrics(
        phase="train",
        epoch=n,
        epochs=3,
        lr=0.1,
        train_loss=1.0 / n,
        objective=1.2 / n,
        test_loss=1.1 / n,
        test_acc=acc,
        zero_fraction=0.2 * n,
        seconds=0.5,
    )


def accuracy_points(browser) -> list[dict]:
    charts = browser.find_elements(By.CSS_SELECTOR, "#chart-accuracy")
    return json.loads(charts[0].get_attribute("data-points")) if charts else []


def test_a_new_epoch_appears_through_the_event_stream_with_polling_off(
    browser, live_server, admin_token, store_url, output_dir
) -> None:
    _, (job_id,) = seed_jobs(store_url, [{"config": CONFIG, "status": "running", "metrics": False}])
    sign_in(browser, live_server, admin_token)
    browser.execute_script(
        "localStorage.setItem('proxns-poll', 'off'); localStorage.removeItem('proxns-live')"
    )
    browser.get_log("browser")
    browser.get(f"{live_server}/#/jobs/{job_id}")
    engine = make_engine(store_url)
    sessions = make_sessionmaker(engine)
    try:
        wait_for(
            lambda: f"Job {job_id}" in browser.find_element(By.TAG_NAME, "main").text, 20, "the job page"
        )
        own = (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/metrics")
        # The first load: the stream opened (so the page loaded after it) and the job was read.
        wait_for(
            lambda: any(p in own for p in browser.execute_script(REQUESTS_JS)), 20, "the page's first load"
        )
        time.sleep(1.0)  # let the first load finish
        first_load = [p for p in browser.execute_script(REQUESTS_JS) if p in own]
        assert accuracy_points(browser) == [], "a job with no epoch yet shows no accuracy curve"

        with sessions() as db:
            write_metrics(db, job_id, [epoch(1, 0.42)], progress=1 / 3, eta_seconds=20.0)
        points = wait_for(lambda: accuracy_points(browser), 15, "epoch 1 on the accuracy chart")
        assert [(p["x"], p["y"]) for p in points] == [(1, 0.42)]

        with sessions() as db:
            write_metrics(db, job_id, [epoch(2, 0.61)], progress=2 / 3, eta_seconds=10.0)
        wait_for(lambda: len(accuracy_points(browser)) == 2, 15, "epoch 2 on the accuracy chart")
        assert [(p["x"], p["y"]) for p in accuracy_points(browser)] == [(1, 0.42), (2, 0.61)]
        browser.save_screenshot(str(output_dir / "live-job-epochs.png"))

        time.sleep(2.0)  # a poll at the default 1.5 s would have fetched again by now
        after = [p for p in browser.execute_script(REQUESTS_JS) if p in own]
        assert after == first_load, f"the page fetched {after[len(first_load) :]} after its first load"
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        browser.execute_script("localStorage.removeItem('proxns-poll')")
        engine.dispose()
