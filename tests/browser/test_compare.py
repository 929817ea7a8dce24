"""The compare page in a real Chromium: three seeded jobs that differ in known config fields.

The jobs are written straight into the live server's store (``proxns_testkit.seed``), so the page
shows finished results and curves without training anything.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from proxns_testkit.seed import seed_jobs

from .conftest import full_page_screenshot, open_page, sign_in, wait_for

pytestmark = pytest.mark.browser

BASE = {
    "dataset": "digits",
    "arch": "vgg",
    "depth": 11,
    "method": "proxns",
    "beta": 100.0,
    "lr_milestones": [2],
}
# The fields the three jobs differ in, and nothing else: (width, lam, epochs, finetune_epochs).
VARIANTS = [
    {"width": 0.25, "lam": 0.25, "epochs": 3, "finetune_epochs": 0},
    {"width": 0.5, "lam": 0.5, "epochs": 4, "finetune_epochs": 0},
    {"width": 0.5, "lam": 1.0, "epochs": 3, "finetune_epochs": 2},
]
DIFFERING = ["width", "lam", "epochs", "finetune_epochs"]  # in TrainConfig's order
# What the config table shows for each (job order = VARIANTS order).
SHOWN = {
    "width": ["0.25", "0.5", "0.5"],
    "lam": ["0.25", "0.5", "1"],
    "epochs": ["3", "4", "3"],
    "finetune_epochs": ["0", "0", "2"],
}
# The third network is deeper: six BN layers instead of four.
DEEP_LAYERS = [{"name": f"features.{3 * i + 1}", "total": 64, "kept": 40 - 5 * i} for i in range(6)]


@pytest.fixture(scope="module")
def job_ids(store_url: str, api: httpx.Client) -> list[int]:
    owner = api.get("/api/me").json()["id"]
    jobs = [
        {"config": {**BASE, **VARIANTS[0]}, "acc": 0.95, "pruned": 0.5},
        {"config": {**BASE, **VARIANTS[1]}, "acc": 0.9612, "pruned": 0.625},
        {"config": {**BASE, **VARIANTS[2]}, "acc": 0.93, "pruned": 0.75, "result": {"layers": DEEP_LAYERS}},
    ]
    _, ids = seed_jobs(store_url, jobs, owner_id=owner)
    return ids


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    sign_in(browser, live_server, admin_token)


def wait_compare(browser) -> None:
    wait_for(lambda: browser.find_element(By.ID, "compare-results"), what="the comparison tables")


def config_rows(browser) -> dict[str, list[str]]:
    """The config table: {field: [each job's value as shown]}, in the table's order."""
    rows = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#compare-config tbody tr"):
        rows[tr.get_attribute("data-field")] = [
            td.text.strip() for td in tr.find_elements(By.CSS_SELECTOR, "td")
        ]
    return rows


def severe_errors(browser, allow_404: bool = False) -> list[dict]:
    """Console errors, but for /favicon.ico (Chromium asks for it on the JSON page ``sign_in`` opens)
    and, with ``allow_404``, the 404s of jobs that are gone (the test asks for them)."""

    def allowed(entry: dict) -> bool:
        if entry.get("source") != "network" or "status of 404" not in entry["message"]:
            return False
        return allow_404 or entry["message"].split(" ", 1)[0].endswith("/favicon.ico")

    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and not allowed(e)]


def press(browser, *keys: str) -> None:
    ActionChains(browser).send_keys(*keys).perform()


def tab_to(browser, element_id: str, limit: int = 80, backwards: bool = False) -> None:
    """Press Tab (Shift+Tab) until the element with `element_id` has focus; it must show a focus ring."""
    for _ in range(limit):
        if backwards:
            ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        else:
            press(browser, Keys.TAB)
        active = browser.switch_to.active_element
        if active.get_attribute("id") == element_id:
            outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", active)
            assert outline != "none", f"no visible focus on #{element_id}"
            return
    pytest.fail(f"#{element_id} not reached with {limit} Tab presses")


def test_three_jobs_show_only_the_differing_fields_and_all_three_curves(
    browser, live_server, api, job_ids, output_dir
):
    browser.get_log("browser")
    a, b, c = job_ids
    configs = [api.get(f"/api/jobs/{i}").json()["config"] for i in job_ids]
    # The premise, from the API: these and only these fields differ.
    assert [k for k in configs[0] if len({json.dumps(cfg[k]) for cfg in configs}) > 1] == DIFFERING

    open_page(browser, f"{live_server}/#/compare?jobs={a},{b},{c}")
    wait_compare(browser)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Compare 3 jobs"
    assert config_rows(browser) == SHOWN  # names, order and values
    heads = browser.find_elements(By.CSS_SELECTOR, "#compare-config thead th.job-col")
    assert [int(th.get_attribute("data-job-id")) for th in heads] == job_ids
    assert [len(th.find_elements(By.CSS_SELECTOR, ".ref-tag")) for th in heads] == [1, 0, 0]
    assert "4 of" in browser.find_element(By.ID, "compare-config-summary").text

    # Results side by side, with the difference to the first job in points.
    jobs = [api.get(f"/api/jobs/{i}").json() for i in job_ids]
    cells = browser.find_elements(By.CSS_SELECTOR, "#compare-results tr[data-field='acc_slim'] td")
    assert [float(td.get_attribute("data-value")) for td in cells] == [j["result"]["acc_slim"] for j in jobs]
    assert cells[0].get_attribute("data-diff") == ""
    assert float(cells[1].get_attribute("data-diff")) == pytest.approx(1.12)
    assert "+1.12 pts" in cells[1].text and "96.12 %" in cells[1].text
    assert "−2.00 pts" in cells[2].text
    removed = browser.find_elements(By.CSS_SELECTOR, "#compare-results tr[data-field='flops_removed'] td")
    for td, job in zip(removed, jobs, strict=True):
        r = job["result"]
        assert float(td.get_attribute("data-value")) == pytest.approx(1 - r["flops_slim"] / r["flops_full"])

    # The accuracy chart: one series per job, each with its seeded epochs (fine-tune continuing).
    acc = browser.find_element(By.ID, "chart-cmp-accuracy")
    series = json.loads(acc.get_attribute("data-series"))
    assert [sr["job_id"] for sr in series] == job_ids
    assert [sr["epochs"] for sr in series] == [[1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5]]
    groups = acc.find_elements(By.CSS_SELECTOR, "svg g[data-series]")
    assert [len(g.find_elements(By.TAG_NAME, "circle")) for g in groups] == [3, 4, 5]
    assert len(acc.find_elements(By.CSS_SELECTOR, "svg g.legend > g")) == 3
    for chart in ("chart-cmp-loss", "chart-cmp-zero"):
        assert len(browser.find_elements(By.CSS_SELECTOR, f"#{chart} svg g[data-series]")) == 3

    # Kept channels per layer: all three networks, the deeper one with its own six layers.
    layers = browser.find_elements(By.CSS_SELECTOR, "#chart-cmp-layers svg g[data-job-id]")
    assert [(int(g.get_attribute("data-job-id")), g.get_attribute("data-layers")) for g in layers] == [
        (a, "4"),
        (b, "4"),
        (c, "6"),
    ]
    first = layers[2].find_element(By.TAG_NAME, "circle")
    ActionChains(browser).move_to_element(first).perform()
    readout = browser.find_element(By.ID, "chart-cmp-layers-readout")
    wait_for(lambda: "features.1: kept 40 of 64" in readout.text, what="the hovered layer's readout")

    # The frontier of the three (one method): read from the page's chart. b prunes more than a
    # with a higher accuracy, so a is dominated; c prunes most.
    def frontier() -> dict[int, str]:
        return {
            int(g.get_attribute("data-job-id")): g.get_attribute("data-frontier")
            for g in browser.find_elements(By.CSS_SELECTOR, "#chart-cmp-frontier svg g.point")
        }

    assert frontier() == {a: "false", b: "true", c: "true"}
    # nothing is selected from here: the markers open their job and say only that
    for g in browser.find_elements(By.CSS_SELECTOR, "#chart-cmp-frontier svg g.point"):
        assert "select" not in g.get_attribute("aria-label")
        assert g.get_attribute("aria-pressed") is None
    plotted = json.loads(
        browser.find_element(By.CSS_SELECTOR, "#chart-cmp-frontier svg").get_attribute("data-points")
    )
    assert [(p["job_id"], p["x"]) for p in plotted] == [
        (j["id"], j["result"]["pruned_fraction"]) for j in jobs
    ]
    # The x-axis switch: FLOPs removed, in the address too.
    Select(browser.find_element(By.ID, "compare-x-axis")).select_by_value("flops")
    wait_for(lambda: browser.current_url.endswith("&x=flops"), what="x=flops in the address")
    svg = browser.find_element(By.CSS_SELECTOR, "#chart-cmp-frontier svg")
    assert svg.get_attribute("data-x-axis") == "flops"
    flops = [1 - j["result"]["flops_slim"] / j["result"]["flops_full"] for j in jobs]
    assert [p["x"] for p in json.loads(svg.get_attribute("data-points"))] == pytest.approx(flops)
    assert frontier() == {a: "false", b: "true", c: "true"}

    full_page_screenshot(browser, output_dir / "compare.png")

    # "Show all fields": every config field, in the API's order, and the address says so.
    browser.find_element(By.ID, "compare-show-all").click()
    wait_for(lambda: len(config_rows(browser)) == len(configs[0]), what="all config fields")
    assert list(config_rows(browser)) == list(configs[0])
    marked = [
        tr.get_attribute("data-field")
        for tr in browser.find_elements(By.CSS_SELECTOR, "#compare-config tr.differs")
    ]
    assert marked == DIFFERING
    assert browser.current_url.endswith(f"#/compare?jobs={a},{b},{c}&all=1&x=flops")

    # A reference picked in the page is in the address too; a reload keeps the whole view.
    Select(browser.find_element(By.ID, "compare-ref")).select_by_value(str(b))
    wait_for(lambda: browser.current_url.endswith(f"&all=1&ref={b}&x=flops"), what="ref in the address")
    browser.refresh()
    wait_compare(browser)
    assert browser.find_element(By.ID, "compare-show-all").get_attribute("aria-checked") == "true"
    assert len(config_rows(browser)) == len(configs[0])
    assert browser.find_element(By.ID, "compare-ref").get_attribute("value") == str(b)
    assert browser.find_element(By.ID, "compare-x-axis").get_attribute("value") == "flops"
    cells = browser.find_elements(By.CSS_SELECTOR, "#compare-results tr[data-field='acc_slim'] td")
    assert float(cells[0].get_attribute("data-diff")) == pytest.approx(-1.12)
    assert cells[1].get_attribute("data-diff") == ""
    # Opening the address made these jobs the tab's selection (the menu's count says so).
    assert browser.find_element(By.ID, "nav-compare").text == "Compare (3)"
    full_page_screenshot(browser, output_dir / "compare-all-fields.png")
    assert severe_errors(browser) == []


def test_keyboard_only_from_the_jobs_list_to_the_switch_and_an_export(
    browser, live_server, job_ids, output_dir
):
    a, b, c = job_ids
    open_page(browser, f"{live_server}/#/")
    browser.execute_script("sessionStorage.removeItem('proxns-selection')")  # start with none selected
    open_page(browser, f"{live_server}/#/")
    wait_for(lambda: browser.find_element(By.ID, f"select-job-{a}"), what="the jobs list's checkboxes")
    assert browser.find_element(By.ID, "nav-compare").text == "Compare (0)"
    browser.get_log("browser")
    downloads: Path = browser.download_dir
    for old in downloads.glob("compare-*"):
        old.unlink()

    # Tick the three jobs (newest first, as the list shows them), then back up to the menu's entry.
    for job in (c, b, a):
        tab_to(browser, f"select-job-{job}")
        press(browser, Keys.SPACE)
    wait_for(lambda: browser.find_element(By.ID, "nav-compare").text == "Compare (3)", what="the count")
    tab_to(browser, "nav-compare", backwards=True)
    press(browser, Keys.ENTER)
    wait_compare(browser)
    assert browser.current_url.endswith(f"#/compare?jobs={c},{b},{a}")
    assert len(config_rows(browser)) == len(DIFFERING)

    tab_to(browser, "compare-show-all")
    press(browser, Keys.SPACE)
    wait_for(lambda: len(config_rows(browser)) > len(DIFFERING), what="all fields after Space")
    assert browser.switch_to.active_element.get_attribute("id") == "compare-show-all"  # focus kept
    press(browser, Keys.ENTER)  # Enter switches it back
    wait_for(lambda: len(config_rows(browser)) == len(DIFFERING), what="the differing fields after Enter")

    # On to a curve (arrow keys step through its epochs), then the accuracy chart's CSV export.
    tab_to(browser, "chart-cmp-accuracy-png")
    press(browser, Keys.TAB, Keys.TAB, Keys.TAB)  # SVG, CSV, then the first curve
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-series") == f"#{c} ProxNS λ 1"
    press(browser, Keys.HOME)
    readout = browser.find_element(By.ID, "chart-cmp-accuracy-readout")
    wait_for(lambda: "epoch 1:" in readout.text, what="the first epoch read out")
    press(browser, Keys.ARROW_RIGHT)
    wait_for(lambda: "epoch 2:" in readout.text, what="the second epoch read out")
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "chart-cmp-accuracy-csv"
    press(browser, Keys.ENTER)
    path = downloads / f"compare-{c}-{b}-{a}-test_acc.csv"
    wait_for(lambda: path.exists() and path.stat().st_size > 0, what=f"the download {path.name}")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 + 4 + 5
    assert {int(r["job_id"]) for r in rows} == {a, b, c}
    browser.save_screenshot(str(output_dir / "compare-keyboard.png"))
    assert severe_errors(browser) == []


def test_deleted_jobs_are_listed_and_can_be_dropped_and_one_job_is_too_few(
    browser, live_server, job_ids, output_dir
):
    a, b, _ = job_ids
    gone = 987654
    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/compare?jobs={a},{gone},{b}")
    wait_compare(browser)
    missing = browser.find_element(By.ID, "compare-missing")
    assert f"#{gone}" in missing.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-config thead th.job-col")) == 2
    browser.save_screenshot(str(output_dir / "compare-missing.png"))
    browser.find_element(By.ID, "compare-drop-missing").click()
    wait_for(lambda: browser.current_url.endswith(f"#/compare?jobs={a},{b}"), what="the address without it")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "h1").text == "Compare 2 jobs", what="two jobs")
    assert not browser.find_elements(By.ID, "compare-missing")
    assert severe_errors(browser, allow_404=True) == []

    open_page(browser, f"{live_server}/#/compare?jobs={a}")
    box = wait_for(lambda: browser.find_element(By.ID, "compare-too-few"), what="the too-few message")
    assert "two or more" in box.text
    assert browser.find_element(By.ID, "compare-back").get_attribute("href").endswith("#/")
    assert browser.find_element(By.ID, "nav-compare").text == "Compare (1)"
    assert severe_errors(browser) == []


def test_an_unfinished_ns_job_shows_its_curves_so_far_and_no_xi(
    browser, live_server, api, store_url, job_ids
):
    a = job_ids[0]
    owner = api.get("/api/me").json()["id"]
    running = {"config": {**BASE, "method": "ns", "lam": 0.01, "beta": None, "epochs": 4}, "acc": 0.8}
    _, (r,) = seed_jobs(store_url, [{**running, "status": "running", "metrics": True}], owner_id=owner)
    epochs = [m["epoch"] for m in api.get(f"/api/jobs/{r}/metrics").json()["items"]]
    assert epochs == [1, 2, 3, 4]
    browser.get_log("browser")
    open_page(browser, f"{live_server}/#/compare?jobs={a},{r}")
    wait_compare(browser)
    series = json.loads(browser.find_element(By.ID, "chart-cmp-accuracy").get_attribute("data-series"))
    assert [(sr["job_id"], sr["epochs"]) for sr in series] == [(a, [1, 2, 3]), (r, epochs)]
    # No result yet: no values, no differences, and the layer chart says so.
    cells = browser.find_elements(By.CSS_SELECTOR, "#compare-results tr[data-field='acc_slim'] td")
    assert [td.get_attribute("data-value") for td in cells] == [str(0.95), ""]
    assert cells[1].text == "—"
    assert f"Not slimmed yet: #{r} NS" in browser.find_element(By.ID, "chart-cmp-layers").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-cmp-layers svg g[data-job-id]")) == 1
    # ξ belongs to ProxNS: the NS job is left out of that chart, and the page says why.
    zero = browser.find_element(By.ID, "chart-cmp-zero")
    assert len(zero.find_elements(By.CSS_SELECTOR, "svg g[data-series]")) == 1
    assert "1 job(s) left out: NS and baseline have no ξ." in zero.text
    # Only the finished job is on the frontier plot.
    plot = browser.find_element(By.CSS_SELECTOR, "#chart-cmp-frontier svg")
    assert [p["job_id"] for p in json.loads(plot.get_attribute("data-points"))] == [a]
    assert severe_errors(browser) == []
