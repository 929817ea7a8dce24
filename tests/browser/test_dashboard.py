"""The dashboard in a real headless Chromium against a live `proxns serve` with a real worker.

One tiny two-job sweep (digits, VGG-11 at width 0.125, 2 epochs) is submitted through the form
and followed through the jobs list, the experiment plot and a job page.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from .conftest import (
    fill,
    full_page_screenshot,
    open_page,
    severe_console_errors,
    sign_in,
    wait_for,
    wait_for_download,
)

pytestmark = pytest.mark.browser

TINY_BASE = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": "11",
    "width": "0.125",
    "epochs": "2",
    "train_subset": "256",
    "test_subset": "128",
    "device": "cpu",
}
SWEEP_LAMS = [0.01, 0.05]
JOB_TIMEOUT_S = 150


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    """Every test here starts signed in as the admin (the API token in localStorage)."""
    sign_in(browser, live_server, admin_token)


def is_expected_422(entry: dict) -> bool:
    """Chromium logs every non-2xx response; the 422 the validation test provokes is intended."""
    return entry.get("source") == "network" and "status of 422" in entry["message"]


def field_error(browser, field_id: str) -> str:
    """The message shown beside the form control with id `field_id`."""
    return browser.find_element(By.ID, f"{field_id}-error").text.strip()


def api_message(api: httpx.Client, path: str, body: dict, field: str) -> str:
    """The message the API gives for `field` when `body` is posted directly."""
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    msgs = [d["msg"] for d in response.json()["detail"] if d["loc"][-1] == field]
    assert msgs, response.text
    return msgs[0].removeprefix("Value error, ")


def test_invalid_values_show_the_api_message_beside_the_field(browser, live_server, api):
    jobs_before = api.get("/api/jobs").json()["total"]
    browser.get_log("browser")

    open_page(browser, f"{live_server}/#/new")
    wait_for(lambda: browser.find_element(By.ID, "job-epochs"), what="the job form")
    fill(browser, "job-dataset", "digits")
    fill(browser, "job-epochs", "10000")
    browser.find_element(By.ID, "job-epochs").send_keys(Keys.ENTER)  # submits with the keyboard alone
    shown = wait_for(lambda: field_error(browser, "job-epochs"), what="the epochs message")
    assert shown == api_message(api, "/api/jobs", {"dataset": "digits", "epochs": 10000}, "epochs")
    assert browser.switch_to.active_element.get_attribute("id") == "job-epochs"
    assert browser.find_element(By.ID, "job-epochs").get_attribute("aria-invalid") == "true"
    assert field_error(browser, "job-lam") == ""

    open_page(browser, f"{live_server}/#/sweep")
    wait_for(lambda: browser.find_element(By.ID, "base-lam"), what="the sweep form")
    fill(browser, "sweep-name", "invalid lam")
    fill(browser, "base-dataset", "digits")
    fill(browser, "base-lam", "-1")
    browser.find_element(By.CSS_SELECTOR, "#sweep-form button[type=submit]").click()
    shown = wait_for(lambda: field_error(browser, "base-lam"), what="the base λ message")
    body = {"name": "invalid lam", "base": {"dataset": "digits", "lam": -1}, "sweep": {}}
    assert shown == api_message(api, "/api/experiments", body, "lam")

    assert api.get("/api/jobs").json()["total"] == jobs_before
    assert severe_console_errors(browser, allow=is_expected_422) == []


def test_sweep_submitted_in_the_form_runs_live_and_plots_one_point_per_job(
    browser, live_server, api, output_dir
):
    browser.get_log("browser")
    downloads: Path = browser.download_dir

    # Submit a two-job λ sweep through the form.
    open_page(browser, f"{live_server}/#/sweep")
    wait_for(lambda: browser.find_element(By.ID, "base-epochs"), what="the sweep form")
    fill(browser, "sweep-name", "browser test: digits vgg11 λ sweep")
    fill(browser, "sweep-proxns-lam", ", ".join(map(str, SWEEP_LAMS)))  # proxns: the method checked first
    for field, value in TINY_BASE.items():
        fill(browser, f"base-{field}", value)
    # the count is the server's dry run of the form's body (debounced)
    wait_for(lambda: browser.find_element(By.ID, "sweep-count").text == "2", what="the server's count, 2")
    browser.find_element(By.CSS_SELECTOR, "#sweep-form button[type=submit]").click()
    wait_for(lambda: "#/experiments/" in browser.current_url, what="the experiment page after submit")
    exp_id = browser.current_url.rsplit("/", 1)[-1]
    exp = api.get(f"/api/experiments/{exp_id}").json()
    job_ids = sorted(j["id"] for j in exp["jobs"])
    assert len(job_ids) == 2
    assert sorted(j["config"]["lam"] for j in exp["jobs"]) == SWEEP_LAMS

    # Stay on the experiment page: progress bars advance and points appear, with no reload.
    browser.execute_script("window.__sameDocument = true")
    seen: dict[int, list[tuple[str, float]]] = {i: [] for i in job_ids}
    point_counts: list[int] = []
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            for row in browser.find_elements(By.CSS_SELECTOR, "#experiment-jobs-table tbody tr"):
                bar = row.find_element(By.CSS_SELECTOR, ".progress")
                state = (row.get_attribute("data-status"), float(bar.get_attribute("data-progress")))
                job = int(row.get_attribute("data-job-id"))
                if not seen[job] or seen[job][-1] != state:
                    seen[job].append(state)
            count = len(json.loads(browser.find_element(By.ID, "headline-plot").get_attribute("data-points")))
            if not point_counts or point_counts[-1] != count:
                point_counts.append(count)
        except Exception:  # the table was re-rendered under us; read it again
            continue
        if (
            point_counts
            and point_counts[-1] == 2
            and all(s and s[-1][0] == "succeeded" for s in seen.values())
        ):
            break
        time.sleep(0.15)
    (output_dir / "progress-observed.json").write_text(
        json.dumps(
            {"progress": {str(k): v for k, v in seen.items()}, "plotted_points": point_counts}, indent=1
        )
    )
    assert all(s and s[-1] == ("succeeded", 1.0) for s in seen.values()), seen
    for states in seen.values():
        progress = [p for _, p in states]
        assert progress == sorted(progress), states  # never goes backwards
        assert progress[0] < 1.0, states  # seen before it finished, then advanced to 100 %
    assert point_counts[0] == 0 and point_counts[-1] == 2 and point_counts == sorted(point_counts), (
        point_counts
    )
    assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded"

    # The headline plot gets one point per finished job, read from the page's chart data.
    plot = browser.find_element(By.ID, "headline-plot")
    points = wait_for(
        lambda: (
            len(json.loads(plot.get_attribute("data-points"))) == 2
            and json.loads(plot.get_attribute("data-points"))
        ),
        what="two plotted points",
    )
    api_points = {p["job_id"]: p for p in api.get(f"/api/experiments/{exp_id}").json()["points"]}
    assert sorted(p["job_id"] for p in points) == job_ids
    assert sorted(p["lam"] for p in points) == SWEEP_LAMS
    for p in points:
        ref = api_points[p["job_id"]]
        assert p["x"] == pytest.approx(ref["pruned_fraction"])
        assert p["y"] == pytest.approx(
            ref["acc_finetuned"] if ref["acc_finetuned"] is not None else ref["acc_slim"]
        )
        assert 0.0 <= p["x"] <= 1.0 and 0.0 <= p["y"] <= 1.0
    markers = browser.find_elements(By.CSS_SELECTOR, "#headline-plot svg .point")
    assert sorted(int(m.get_attribute("data-job-id")) for m in markers) == job_ids
    top = markers[-1]  # drawn last: on top when the two points overlap
    ActionChains(browser).move_to_element(top).perform()
    tooltip = browser.find_element(By.ID, "plot-tooltip")
    wait_for(tooltip.is_displayed, what="the hover tooltip")
    assert "λ" in tooltip.text and "FLOPs" in tooltip.text and "Params" in tooltip.text
    plot.screenshot(str(output_dir / "experiment-plot-hover.png"))
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    wait_for(lambda: not tooltip.is_displayed(), what="the tooltip to hide")
    full_page_screenshot(browser, output_dir / "experiment-plot.png")

    browser.find_element(By.ID, "save-csv").click()
    csv_lines = (
        wait_for_download(downloads, ".csv", prefix=f"experiment-{exp_id}-").read_text().strip().splitlines()
    )
    assert csv_lines[0].startswith("job_id,method,lam,beta")
    assert len(csv_lines) == 3
    browser.find_element(By.ID, "save-svg").click()
    assert "<svg" in wait_for_download(downloads, ".svg", prefix=f"experiment-{exp_id}-").read_text()
    browser.find_element(By.ID, "save-png").click()
    png = wait_for_download(downloads, ".png", prefix=f"experiment-{exp_id}-")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(png, output_dir / "experiment-plot-export.png")

    # Clicking a point opens its job: one curve point per epoch, results, and model files.
    job_id = int(top.get_attribute("data-job-id"))
    top.click()
    wait_for(
        lambda: browser.current_url.endswith(f"#/jobs/{job_id}"), what="the job page after clicking a point"
    )
    epochs = int(TINY_BASE["epochs"])
    for chart in ("chart-accuracy", "chart-zero"):
        curve = wait_for(
            lambda chart=chart: json.loads(browser.find_element(By.ID, chart).get_attribute("data-points")),
            what=f"{chart} data",
        )
        assert [(p["phase"], p["epoch"]) for p in curve] == [("train", e) for e in range(1, epochs + 1)]
    loss = json.loads(browser.find_element(By.ID, "chart-loss").get_attribute("data-points"))
    assert len(loss["train_loss"]) == epochs and len(loss["objective"]) == epochs
    result = api.get(f"/api/jobs/{job_id}").json()["result"]
    layers = json.loads(browser.find_element(By.ID, "chart-layers").get_attribute("data-points"))
    assert layers == result["layers"]
    table = browser.find_element(By.ID, "result-table").text
    assert "Parameters" in table and "FLOPs" in table and "Latency" in table and "Test accuracy" in table

    buttons = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#downloads a[download]"), what="download buttons"
    )
    names = {b.get_attribute("download") for b in buttons}
    assert {"slim.safetensors", "slim.json", "slim.torchscript.pt", "slim.onnx"} <= names
    full_page_screenshot(browser, output_dir / "job-page.png")
    json_button = browser.find_element(By.CSS_SELECTOR, "#downloads a[download='slim.json']")
    json_button.click()
    got = wait_for_download(downloads, "slim.json")
    data = got.read_bytes()
    assert hashlib.sha256(data).hexdigest() == json_button.get_attribute("data-sha256")
    assert len(data) == int(json_button.get_attribute("data-bytes"))

    # The jobs list shows both finished jobs with their slim accuracy and pruned share.
    open_page(browser, f"{live_server}/#/?experiment_id={exp_id}")
    rows = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr"), what="the jobs list"
    )
    assert sorted(int(r.get_attribute("data-job-id")) for r in rows) == job_ids
    for row in rows:
        ref = api_points[int(row.get_attribute("data-job-id"))]
        cells = {c.get_attribute("data-label"): c.text for c in row.find_elements(By.TAG_NAME, "td")}
        # A 2-epoch run may end at chance accuracy: then, and only then, the status carries the flag.
        warned = {w["code"] for w in api.get(f"/api/jobs/{ref['job_id']}").json()["warnings"]}
        flag = " ⚠ chance" if "chance_accuracy" in warned else ""
        status = " ".join(cells["Status"].split())  # the badge may wrap onto its own line
        assert status == f"succeeded{flag}" and cells["Progress"].startswith("100 %")
        assert cells["Pruned"] == f"{ref['pruned_fraction'] * 100:.1f} %"
        assert cells["Acc. slim"] == f"{ref['acc_slim'] * 100:.1f} %"
        fine = ref["acc_finetuned"]
        assert cells["Acc. fine-tuned"] == (f"{fine * 100:.1f} %" if fine is not None else "—")
    full_page_screenshot(browser, output_dir / "jobs-list.png")
    status_filter = browser.find_element(By.ID, "filter-status")
    status_filter.send_keys(Keys.HOME)  # "all" -> first status, with the keyboard
    Select(status_filter).select_by_value("failed")
    empty = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#jobs-body .empty"), what="the empty state"
    )
    assert "No jobs match these filters" in empty.text
    assert browser.current_url.endswith(f"#/?status=failed&experiment_id={exp_id}")
    assert browser.switch_to.active_element.get_attribute("id") == "filter-status"  # focus stays
    browser.find_element(By.ID, "clear-filters").click()
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr")) >= len(job_ids),
        what="the unfiltered list",
    )
    browser.set_window_size(390, 844)  # phone
    open_page(browser, f"{live_server}/#/")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#jobs-table tbody tr"), what="the jobs list")
    full_page_screenshot(browser, output_dir / "jobs-list-phone.png")
    browser.set_window_size(1366, 900)

    assert severe_console_errors(browser) == []


def test_job_form_works_with_the_keyboard_alone_and_a_running_job_can_be_cancelled(
    browser, live_server, api, output_dir
):
    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/new")
    form = wait_for(lambda: browser.find_element(By.ID, "job-form"), what="the job form")
    controls = [
        c
        for c in form.find_elements(By.CSS_SELECTOR, "input, select, button, summary")
        if c.is_displayed() and c.is_enabled()
    ]
    labelled = [c for c in controls if c.tag_name in ("input", "select")]
    for control in labelled:  # every control has a visible label tied to it
        label = form.find_element(By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
        assert label.text.strip(), control.get_attribute("id")

    # Tab from the top of the page: every control in document order, each with a visible focus ring.
    # (A click on the heading, not on <body>: that lands mid-window, on whatever field is there.)
    browser.find_element(By.CSS_SELECTOR, "main h1").click()
    order: list[str] = []
    for _ in range(len(controls) + 12):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        if (
            form.get_attribute("id") == active.find_element(By.XPATH, "./ancestor::form").get_attribute("id")
            if active.find_elements(By.XPATH, "./ancestor::form")
            else False
        ):
            order.append(active.get_attribute("id") or active.tag_name)
            outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", active)
            assert outline != "none", f"no visible focus on {order[-1]}"
        if active.get_attribute("type") == "submit":
            break
    expected = [c.get_attribute("id") or c.tag_name for c in controls]
    assert order == expected

    # Fill and submit with keys only: a job long enough to cancel while it runs.
    for field, value in {**TINY_BASE, "epochs": "200", "lam": "0.01"}.items():
        el = browser.find_element(By.ID, f"job-{field}")
        if el.tag_name == "select":  # arrow keys, as a keyboard user would
            el.send_keys(Keys.HOME)
            for _ in el.find_elements(By.TAG_NAME, "option"):
                if el.get_attribute("value") == value:
                    break
                el.send_keys(Keys.DOWN)
            assert el.get_attribute("value") == value
        else:
            el.send_keys(Keys.CONTROL, "a")
            el.send_keys(value)
    browser.find_element(By.ID, "job-epochs").send_keys(Keys.ENTER)
    wait_for(lambda: "#/jobs/" in browser.current_url, what="the job page after a keyboard submit")
    job_id = int(browser.current_url.rsplit("/", 1)[-1])
    config = api.get(f"/api/jobs/{job_id}").json()["config"]
    assert (config["epochs"], config["lam"], config["depth"], config["width"]) == (200, 0.01, 11, 0.125)

    wait_for(
        lambda: (
            browser.find_element(By.CSS_SELECTOR, ".job-progress .progress").get_attribute("data-status")
            == "running"
        ),
        timeout=60,
        what="the job to start",
    )
    # Its curves grow epoch by epoch on the open page.
    browser.execute_script("window.__sameDocument = true")

    def epochs_plotted() -> int:
        return len(json.loads(browser.find_element(By.ID, "chart-accuracy").get_attribute("data-points")))

    seen_epochs = wait_for(epochs_plotted, timeout=60, what="the first epoch on the curve")
    wait_for(lambda: epochs_plotted() > seen_epochs, timeout=60, what="another epoch on the curve")
    assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded"

    # The jobs list follows the running job live.
    browser.execute_script("location.hash = '#/'; window.__sameDocument = true")
    bar = f"#jobs-table tr[data-job-id='{job_id}'] .progress"
    first = float(
        wait_for(
            lambda: browser.find_element(By.CSS_SELECTOR, bar).get_attribute("data-progress"), what="its row"
        )
    )
    wait_for(
        lambda: float(browser.find_element(By.CSS_SELECTOR, bar).get_attribute("data-progress")) > first,
        timeout=60,
        what="its progress bar to advance",
    )
    assert "ETA" in browser.find_element(By.CSS_SELECTOR, bar).text
    browser.save_screenshot(str(output_dir / "jobs-list-running.png"))
    assert browser.execute_script("return window.__sameDocument === true"), "the page reloaded"
    browser.execute_script(f"location.hash = '#/jobs/{job_id}'")
    cancel = wait_for(lambda: browser.find_element(By.ID, "cancel-job"), what="the cancel button")
    browser.execute_script("arguments[0].focus()", cancel)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(
        lambda: api.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled",
        timeout=60,
        what="the worker to cancel the job",
    )
    badge = wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "h1 .badge.status-cancelled"),
        what="the cancelled badge",
    )
    assert badge.text == "cancelled"
    assert not browser.find_elements(By.ID, "cancel-job")
    assert severe_console_errors(browser) == []
