"""The jobs list (filter expression, sorting, columns, chance flag) and the job page (fine-tune epochs
on the curves, which charts show, the ξ = 0 heatmap, the |ξ| histograms, organising) in real
Chromium, over finished jobs seeded straight into the live server's store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from proxns_testkit.seed import seed_jobs

from .conftest import (
    full_page_screenshot,
    open_page,
    severe_console_errors,
    sign_in,
    wait_for,
    wait_for_download,
)

pytestmark = pytest.mark.browser

BASE = {"dataset": "digits", "arch": "vgg", "depth": 11, "width": 0.125, "epochs": 4}


def proxns(**extra) -> dict:
    return {**BASE, "method": "proxns", **extra}


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    sign_in(browser, live_server, admin_token)


@pytest.fixture(scope="module")
def seeded(store_url: str) -> dict:
    """Jobs differing only in λ, width, seed, β or epochs, an NS and a baseline job, a failed one, one
    at chance accuracy, and one to organise; all tagged with this run's own tag."""
    tag = f"jv-{uuid.uuid4().hex[:8]}"
    # "organise" (deleted by a test) comes first: SQLite hands the highest id out again once it is
    # deleted, and a later job with a deleted job's id is not what these tests are about.
    jobs = {
        "organise": {"config": proxns(lam=0.75), "acc": 0.95, "pruned": 0.5, "note": "seeded"},
        "finetuned": {"config": proxns(lam=0.5, finetune_epochs=2), "acc": 0.95, "pruned": 0.5, "zero": 0.6},
        "lam1": {"config": proxns(lam=1.0), "acc": 0.93, "pruned": 0.7},
        "wide": {"config": proxns(lam=0.5, width=0.25), "acc": 0.96, "pruned": 0.55},
        "seed1": {"config": proxns(lam=0.5, seed=1), "acc": 0.94, "pruned": 0.52},
        "beta": {"config": proxns(lam=0.25, beta=10), "acc": 0.97, "pruned": 0.3},
        "ns": {
            "config": {**BASE, "method": "ns", "lam": 0.02, "prune_ratio": 0.5},
            "acc": 0.9,
            "pruned": 0.5,
        },
        "baseline": {"config": {**BASE, "method": "baseline"}, "acc": 0.98, "pruned": 0.0},
        "failed": {
            "config": proxns(lam=0.5),
            "status": "failed",
            "error": "CUDA out of memory",
            "acc": 0,
            "pruned": 0,
        },
        "chance": {"config": proxns(lam=8.0), "acc": 0.1, "pruned": 0.98},
    }
    for item in jobs.values():
        item["tags"] = [tag]
    _, ids = seed_jobs(store_url, list(jobs.values()))
    return {"tag": tag, "ids": dict(zip(jobs, ids, strict=True))}


def row_ids(browser) -> list[int]:
    return [
        int(r.get_attribute("data-job-id"))
        for r in browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr")
    ]


def api_ids(api: httpx.Client, **params) -> list[int]:
    response = api.get("/api/jobs", params={"limit": 50, **params})
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["items"]]


def allowed(entry: dict) -> bool:
    """The 422 the bad expression provokes, the 404 of a deleted job's page, and the favicon.ico that
    Chromium asks for on /healthz (the JSON page sign_in stores the token from) are intended."""
    if entry.get("source") != "network":
        return False
    message = entry["message"]
    if "status of 422" in message:
        return "/api/jobs?" in message
    return "status of 404" in message and ("/favicon.ico" in message or "/api/jobs/" in message)


def test_filter_box_lists_what_the_api_lists_and_points_at_a_bad_expression(
    browser, live_server, api, seeded, output_dir
):
    browser.get_log("browser")
    tag = seeded["tag"]
    expr = f"tag = '{tag}' and method = proxns and lam >= 0.5 and acc_slim > 0.935"
    expected = api_ids(api, where=expr)
    assert sorted(expected) == sorted(seeded["ids"][k] for k in ("finetuned", "wide", "seed1", "organise"))

    open_page(browser, f"{live_server}/#/")
    box = wait_for(lambda: browser.find_element(By.ID, "filter-where"), what="the filter box")
    box.send_keys(expr + Keys.ENTER)
    wait_for(lambda: row_ids(browser) == expected, what="the filtered list")
    assert "where=" in browser.current_url
    assert browser.find_element(By.ID, "jobs-count").text == f"({len(expected)})"

    # Columns tell apart jobs that differ only in width, seed or β; one label is one number.
    open_page(browser, f"{live_server}/#/?tag={tag}")
    wait_for(lambda: len(row_ids(browser)) == len(seeded["ids"]), what="the tagged jobs")

    def cells(job_id: int) -> dict[str, str]:
        row = browser.find_element(By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{job_id}']")
        return {c.get_attribute("data-label"): c.text for c in row.find_elements(By.TAG_NAME, "td")}

    wide, seed1, fine = (
        cells(seeded["ids"]["wide"]),
        cells(seeded["ids"]["seed1"]),
        cells(seeded["ids"]["finetuned"]),
    )
    assert (wide["Width"], seed1["Width"], wide["Seed"], seed1["Seed"]) == ("0.25", "0.125", "0", "1")
    assert fine["Epochs"] == "4 + 2" and cells(seeded["ids"]["beta"])["β"] == "10"
    assert cells(seeded["ids"]["ns"])["Prune ratio"] == "0.5"
    job = api.get(f"/api/jobs/{seeded['ids']['wide']}").json()
    assert wide["Acc. slim"] == f"{job['result']['acc_slim'] * 100:.1f} %" and wide["Acc. fine-tuned"] == "—"
    # The run at chance accuracy is flagged beside its status, with the API's message.
    chance = api.get(f"/api/jobs/{seeded['ids']['chance']}").json()
    (warning,) = [w for w in chance["warnings"] if w["code"] == "chance_accuracy"]
    flag = browser.find_element(
        By.CSS_SELECTOR,
        f"#jobs-table tr[data-job-id='{seeded['ids']['chance']}'] [data-warning='chance_accuracy']",
    )
    assert flag.get_attribute("title") == warning["message"]
    assert not browser.find_elements(
        By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{seeded['ids']['wide']}'] [data-warning]"
    )
    full_page_screenshot(browser, output_dir / "jobs-list-columns.png")

    # A bad expression: the server's message beside the box, the offending part marked.
    bad = f"tag = '{tag}' and lamb >= 0.1"
    response = api.get("/api/jobs", params={"where": bad})
    assert response.status_code == 422, response.text
    (problem,) = [d for d in response.json()["detail"] if d["loc"][-1] == "where"]
    box = browser.find_element(By.ID, "filter-where")
    box.clear()
    box.send_keys(bad + Keys.ENTER)
    shown = wait_for(lambda: browser.find_element(By.ID, "filter-where-error").text, what="the filter error")
    assert shown == problem["msg"]
    assert box.get_attribute("aria-invalid") == "true"
    start, length = problem["ctx"]["position"], problem["ctx"]["length"]
    assert (
        browser.find_element(By.CSS_SELECTOR, "#filter-where-mark mark").text
        == bad[start : start + length]
        == "lamb"
    )
    assert not browser.find_elements(By.CSS_SELECTOR, "#jobs-table")
    browser.save_screenshot(str(output_dir / "jobs-list-filter-error.png"))
    # Fixing it clears the error.
    box.clear()
    box.send_keys(f"tag = '{tag}' and lam >= 1" + Keys.ENTER)
    wait_for(
        lambda: row_ids(browser) == api_ids(api, where=f"tag = '{tag}' and lam >= 1"), what="the fixed filter"
    )
    assert browser.find_element(By.ID, "filter-where-error").text == ""
    assert box.get_attribute("aria-invalid") is None
    assert severe_console_errors(browser, allow=allowed) == []


def test_sorting_on_a_column_header(browser, live_server, api, seeded):
    browser.get_log("browser")
    tag = seeded["tag"]
    open_page(browser, f"{live_server}/#/?tag={tag}")
    wait_for(lambda: len(row_ids(browser)) == len(seeded["ids"]), what="the tagged jobs")
    browser.find_element(By.ID, "sort-acc_slim").click()
    wait_for(lambda: row_ids(browser) == api_ids(api, tag=tag, sort="acc_slim"), what="ascending accuracy")
    assert "sort=acc_slim" in browser.current_url
    head = browser.find_element(By.CSS_SELECTOR, "th[data-sort='acc_slim']")
    assert head.get_attribute("aria-sort") == "ascending"
    # Enter on the focused header button flips it.
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(lambda: row_ids(browser) == api_ids(api, tag=tag, sort="-acc_slim"), what="descending accuracy")
    assert (
        browser.find_element(By.CSS_SELECTOR, "th[data-sort='acc_slim']").get_attribute("aria-sort")
        == "descending"
    )
    accs = [api.get(f"/api/jobs/{i}").json()["result"] for i in row_ids(browser)]
    shown = [a["acc_slim"] for a in accs if a]
    assert shown == sorted(shown, reverse=True)

    # Ticking rows selects them for comparison; the link counts them and carries their ids.
    browser.execute_script("sessionStorage.removeItem('proxns-selection')")
    first, second = seeded["ids"]["wide"], seeded["ids"]["seed1"]
    try:
        for job_id in (first, second):
            browser.find_element(By.ID, f"select-job-{job_id}").click()
        link = browser.find_element(By.ID, "compare-link")
        wait_for(lambda: link.text == "Compare selected (2)", what="the compare link's count")
        assert link.get_attribute("href").endswith(f"#/compare?jobs={first},{second}")
        assert browser.find_element(By.ID, f"select-job-{first}").is_selected()
    finally:
        browser.execute_script("sessionStorage.removeItem('proxns-selection')")
    assert severe_console_errors(browser, allow=allowed) == []


def points(browser, chart: str):
    return json.loads(browser.find_element(By.ID, chart).get_attribute("data-points"))


def test_job_page_curves_heatmap_and_histograms(browser, live_server, api, seeded, output_dir):
    browser.get_log("browser")
    job_id = seeded["ids"]["finetuned"]
    metrics = api.get(f"/api/jobs/{job_id}/metrics").json()["items"]
    edges = api.get("/api/meta").json()["xi_hist_edges"]
    open_page(browser, f"{live_server}/#/jobs/{job_id}")
    acc = wait_for(lambda: points(browser, "chart-accuracy"), what="the accuracy curve")
    # Fine-tune epochs follow the 4 training epochs at x = 5, 6 (the API numbers them so already).
    assert [(p["phase"], p["x"]) for p in acc] == [("train", e) for e in range(1, 5)] + [
        ("finetune", 5),
        ("finetune", 6),
    ]
    svg = browser.find_element(By.CSS_SELECTOR, "#chart-accuracy svg")
    right = float(svg.get_attribute("width")) - 16  # the plot's right edge
    dots = [float(c.get_attribute("cx")) for c in svg.find_elements(By.TAG_NAME, "circle")]
    assert len(dots) == 6 and max(dots) <= right + 0.5, dots
    assert browser.find_elements(By.ID, "chart-zero")  # proxns: ξ = 0 is drawn

    # The heatmap: one cell per layer and training epoch, coloured by zeros / total.
    train = [m for m in metrics if m["layers"]]
    layers = [layer["name"] for layer in train[0]["layers"]]
    cells = browser.find_elements(By.CSS_SELECTOR, "#chart-heatmap rect[data-row]")
    assert len(cells) == len(layers) * len(train) == 16
    for c in cells:
        m = train[int(c.get_attribute("data-col"))]
        layer = m["layers"][int(c.get_attribute("data-row"))]
        assert float(c.get_attribute("data-share")) == pytest.approx(
            layer["zeros"] / layer["total"], abs=1e-4
        )
    # Keyboard: focus lands on the last epoch of the first layer; arrows move, the read-out says it.
    heat = browser.find_element(By.ID, "heatmap-svg")
    browser.execute_script("arguments[0].focus()", heat)
    ActionChains(browser).send_keys(Keys.ARROW_DOWN, Keys.ARROW_LEFT).perform()
    layer = train[-2]["layers"][1]
    share = 100 * layer["zeros"] / layer["total"]
    expected = f"{layer['name']}, epoch {train[-2]['epoch']}: {layer['zeros']} of {layer['total']} exactly zero ({share:.1f} %)"
    wait_for(lambda: browser.find_element(By.ID, "heatmap-readout").text == expected, what="the read-out")

    # The histogram: len(edges) + 2 bins, the last training epoch summed over layers by default.
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-hist rect[data-bin]")
    assert len(bars) == len(edges) + 2
    summed = [sum(col) for col in zip(*(layer["hist"] for layer in train[-1]["layers"]), strict=True)]
    assert [int(b.get_attribute("data-count")) for b in bars] == summed
    browser.find_element(By.CSS_SELECTOR, f"#hist-layer option[value='{layers[0]}']").click()
    browser.find_element(By.CSS_SELECTOR, "#hist-epoch option[value='1']").click()
    wait_for(
        lambda: (
            [
                int(b.get_attribute("data-count"))
                for b in browser.find_elements(By.CSS_SELECTOR, "#chart-hist rect[data-bin]")
            ]
            == train[0]["layers"][0]["hist"]
        ),
        what="epoch 1, first layer",
    )
    rows = points(browser, "chart-hist")
    assert {(r["epoch"], r["layer"]) for r in rows} == {(1, layers[0])}
    browser.find_element(By.ID, "chart-heatmap-csv").click()
    csv = (
        wait_for_download(browser.download_dir, f"job-{job_id}-xi-zero-heatmap.csv").read_text().splitlines()
    )
    assert csv[0].split(",")[:4] == ["layer", "epoch", "zeros", "total"] and len(csv) == 1 + 16
    browser.find_element(By.ID, "chart-heatmap-svg").click()
    exported = wait_for_download(browser.download_dir, f"job-{job_id}-xi-zero-heatmap.svg").read_text()
    assert exported.count("<rect") >= 16 and "heat-cursor" not in exported  # the data, not the cursor
    full_page_screenshot(browser, output_dir / "job-inside-training.png")
    assert severe_console_errors(browser, allow=allowed) == []


def test_which_charts_show_per_method_and_status(browser, live_server, api, seeded, output_dir):
    browser.get_log("browser")
    for key in ("ns", "baseline"):
        open_page(browser, f"{live_server}/#/jobs/{seeded['ids'][key]}")
        wait_for(lambda: points(browser, "chart-accuracy"), what=f"the {key} curves")
        assert not browser.find_elements(By.ID, "chart-zero"), key
        assert not browser.find_elements(By.ID, "chart-heatmap"), key
    open_page(browser, f"{live_server}/#/jobs/{seeded['ids']['failed']}")
    note = wait_for(lambda: browser.find_element(By.ID, "no-curves"), what="the no-curves note")
    assert note.text == "The job failed before finishing an epoch: there are no curves."
    assert not browser.find_elements(By.CSS_SELECTOR, ".charts, #chart-accuracy, #chart-loss, #chart-zero")
    assert "CUDA out of memory" in browser.find_element(By.ID, "job-error").text
    full_page_screenshot(browser, output_dir / "job-failed.png")
    # The run at chance accuracy says so on its page.
    chance = api.get(f"/api/jobs/{seeded['ids']['chance']}").json()
    (warning,) = [w for w in chance["warnings"] if w["code"] == "chance_accuracy"]
    open_page(browser, f"{live_server}/#/jobs/{chance['id']}")
    box = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#job-warnings [data-warning='chance_accuracy']"),
        what="the warning",
    )
    assert warning["message"] in box.text
    assert browser.find_element(By.CSS_SELECTOR, "h1 [data-warning='chance_accuracy']")
    browser.save_screenshot(str(output_dir / "job-chance-accuracy.png"))
    assert severe_console_errors(browser, allow=allowed) == []


def test_tag_note_archive_and_delete_survive_a_reload(
    browser, live_server, api, seeded, artifact_dir: Path, output_dir
):
    browser.get_log("browser")
    job_id, tag = seeded["ids"]["organise"], seeded["tag"]
    open_page(browser, f"{live_server}/#/jobs/{job_id}")
    tags_input = wait_for(lambda: browser.find_element(By.ID, "tags-input"), what="the tag editor")
    tags_input.send_keys("keep-me, second" + Keys.ENTER)
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#tags-list [data-tag='second']"), what="the new tags"
    )
    browser.find_element(By.CSS_SELECTOR, "#tags-list [data-tag='second'] .tag-remove").click()
    wait_for(
        lambda: not browser.find_elements(By.CSS_SELECTOR, "#tags-list [data-tag='second']"),
        what="a tag removed",
    )
    note = browser.find_element(By.ID, "note-text")
    note.clear()
    note.send_keys("lr too high; rerun with 0.05")
    browser.find_element(By.ID, "note-save").click()
    wait_for(lambda: browser.find_element(By.ID, "note-status").text == "Saved", what="the note saved")
    browser.find_element(By.ID, "archive").click()
    wait_for(lambda: browser.find_element(By.ID, "archive").text == "Unarchive", what="archived")

    job = api.get(f"/api/jobs/{job_id}").json()
    assert (
        job["tags"] == [tag, "keep-me"]
        and job["note"] == "lr too high; rerun with 0.05"
        and job["archived_at"]
    )
    open_page(browser, f"{live_server}/#/jobs/{job_id}")  # a reload shows what was stored
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#tags-list [data-tag='keep-me']"),
        what="the tags after reload",
    )
    assert browser.find_element(By.ID, "note-text").get_attribute("value") == "lr too high; rerun with 0.05"
    assert browser.find_element(By.ID, "archived-badge").text == "archived"
    full_page_screenshot(browser, output_dir / "job-organise.png")

    # Archived: out of the default list, back with "Show archived".
    open_page(browser, f"{live_server}/#/?tag={tag}")
    wait_for(
        lambda: row_ids(browser) and job_id not in row_ids(browser), what="the list without the archived job"
    )
    browser.find_element(By.ID, "filter-archived").click()
    wait_for(lambda: job_id in row_ids(browser), what="the archived job shown")
    assert "archived=all" in browser.current_url

    # Delete: confirmed in the page, back on the list, its files gone, its page says so.
    folder = artifact_dir / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slim.json").write_text("{}")
    open_page(browser, f"{live_server}/#/jobs/{job_id}")
    wait_for(lambda: browser.find_element(By.ID, "delete"), what="the delete button").click()
    browser.find_element(By.ID, "delete-confirm").click()
    flash = wait_for(lambda: browser.find_element(By.ID, "flash"), what="the list after delete")
    assert f"Job {job_id} was deleted" in flash.text
    assert api.get(f"/api/jobs/{job_id}").status_code == 404
    assert not folder.exists()
    open_page(browser, f"{live_server}/#/jobs/{job_id}")
    gone = wait_for(lambda: browser.find_element(By.ID, "job-missing"), what="the deleted job's page")
    assert "deleted" in gone.text
    assert severe_console_errors(browser, allow=allowed) == []


def add_epoch(store_url: str, job_id: int, epoch: int, acc: float, *, finish: bool = False) -> None:
    """One more epoch row for a running job, as a worker writes it (and the job finished, if `finish`)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from proxns_core.spec import EpochMetrics
    from store.models import Job, Metric, utcnow
    from store.queries import commit_jobs

    engine = create_engine(store_url)
    try:
        with Session(engine) as db:
            row = EpochMetrics(
                phase="train", epoch=epoch, epochs=4, lr=0.1, train_loss=1.0 / epoch, test_acc=acc
            )
            db.add(Metric(job_id=job_id, **row.model_dump()))
            job = db.get(Job, job_id)
            job.epochs_done, job.progress, job.heartbeat_at = epoch, epoch / 4, utcnow()
            if finish:
                job.status, job.finished_at = "cancelled", utcnow()
            commit_jobs(db)
    finally:
        engine.dispose()


def test_the_job_page_and_the_list_follow_events_with_polling_off(
    browser, live_server, api, store_url, output_dir
):
    """New epochs reach an open job page through GET /api/events alone (localStorage proxns-poll=off),
    appended without a reload; the list redraws a job's row when the job changes."""
    browser.get_log("browser")
    tag = f"live-{uuid.uuid4().hex[:8]}"
    _, (job_id,) = seed_jobs(
        store_url,
        [
            {
                "config": proxns(lam=0.5),
                "status": "running",
                "metrics": False,
                "acc": 0.9,
                "pruned": 0.5,
                "tags": [tag],
            }
        ],
    )
    browser.execute_script("localStorage.setItem('proxns-poll', 'off')")
    try:
        open_page(browser, f"{live_server}/#/jobs/{job_id}")
        wait_for(lambda: browser.find_element(By.ID, "no-curves"), what="the page before any epoch")
        browser.execute_script("window.__sameDocument = true")
        add_epoch(store_url, job_id, 1, 0.4)
        wait_for(
            lambda: len(points(browser, "chart-accuracy")) == 1, timeout=20, what="epoch 1 from the events"
        )
        add_epoch(store_url, job_id, 2, 0.6)
        wait_for(
            lambda: len(points(browser, "chart-accuracy")) == 2, timeout=20, what="epoch 2 from the events"
        )
        acc = points(browser, "chart-accuracy")
        assert [(p["x"], p["y"]) for p in acc] == [(1, 0.4), (2, 0.6)]
        assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded"

        open_page(browser, f"{live_server}/#/?tag={tag}")
        bar = f"#jobs-table tr[data-job-id='{job_id}'] .progress"
        wait_for(
            lambda: browser.find_element(By.CSS_SELECTOR, bar).get_attribute("data-progress") == "0.5",
            what="its row",
        )
        browser.execute_script("window.__sameDocument = true")
        add_epoch(store_url, job_id, 3, 0.7, finish=True)
        wait_for(
            lambda: (
                browser.find_element(
                    By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{job_id}']"
                ).get_attribute("data-status")
                == "cancelled"
            ),
            timeout=20,
            what="the row to follow the job's change",
        )
        assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded"

        # Deleted elsewhere (the CLI, another tab): the open page says so, from the `deleted` event.
        open_page(browser, f"{live_server}/#/jobs/{job_id}")
        wait_for(lambda: points(browser, "chart-accuracy"), what="the job page again")
        assert api.delete(f"/api/jobs/{job_id}").status_code == 204
        gone = wait_for(
            lambda: browser.find_element(By.ID, "job-missing"), timeout=20, what="the deleted note"
        )
        assert browser.find_element(By.CSS_SELECTOR, "main h1").text == f"Job {job_id} was deleted"
        assert "model files are gone" in gone.text
    finally:
        browser.execute_script("localStorage.removeItem('proxns-poll')")
    assert severe_console_errors(browser, allow=allowed) == []


def test_odd_addresses_say_what_is_wrong_and_typed_filters_stay(browser, live_server, api, seeded):
    # An experiment id that is not one (a 422) or none (a 404): an answer, not "Loading…" forever.
    for bad, words in (("abc", "Could not load experiment"), ("0", "")):
        open_page(browser, f"{live_server}/#/experiments/{bad}")
        text = wait_for(
            lambda: (t := browser.find_element(By.ID, "view").text) and "Loading" not in t and t,
            what=f"the answer to #/experiments/{bad}",
        )
        assert words in text or "not found" in text.lower()
    # ?archived=x is refused by the API: the body says so; ?offset=abc reads as the first page.
    open_page(browser, f"{live_server}/#/?archived=x")
    assert "Could not list the jobs" in wait_for(
        lambda: browser.find_element(By.ID, "jobs-error").text, what="the refusal in the body"
    )
    open_page(browser, f"{live_server}/#/?offset=abc&tag={seeded['tag']}")
    wait_for(lambda: row_ids(browser) == api_ids(api, tag=seeded["tag"]), what="the tagged jobs")
    assert "NaN" not in browser.find_element(By.ID, "view").text
    # Text typed in a box but not applied survives a sort (which rewrites only what it changes).
    browser.find_element(By.ID, "filter-where").send_keys("lam > 0")
    browser.find_element(By.ID, "sort-acc_slim").click()
    wait_for(lambda: "sort=acc_slim" in browser.current_url, what="the sort in the address")
    assert browser.find_element(By.ID, "filter-where").get_attribute("value") == "lam > 0"
