"""The experiment page in real Chromium against a live `proxns serve` (issue 13: items 1, 4, 6, 8, 9).

Finished jobs are seeded straight into the server's store (proxns_testkit.seed): several methods and
λ, one run collapsed to chance accuracy, one baseline at x = 0 with an NS job on the same spot. Every
check reads the page's own data (`data-points`, `data-axes`) and compares it with the API's numbers.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from proxns_testkit.seed import seed_jobs

from .conftest import is_favicon_404, severe_console_errors, sign_in, wait_for, wait_for_download
from .conftest import open_page as load_page

pytestmark = pytest.mark.browser

BASE = {"dataset": "digits", "arch": "vgg", "depth": 11, "width": 0.25, "epochs": 4, "device": "cpu"}
FLOPS_FULL = 5_000_000


def job(method: str, lam: float | None, acc: float, pruned: float, seed: int = 0, **result) -> dict:
    config = {**BASE, "method": method, "seed": seed}
    if lam is not None:
        config["lam"] = lam
    return {"config": config, "acc": acc, "pruned": pruned, "result": result}


# The baseline comes first (lowest id) and an NS job lands on its very spot (x = 0, same accuracy):
# drawn in id order, the NS triangle would cover the baseline's square.
JOBS = [
    job("baseline", None, 0.991, 0.0, acc_full=0.991),
    job("ns", 0.0001, 0.991, 0.0, acc_full=0.992),
    job("ns", 0.01, 0.985, 0.3),
    job("ns", 0.02, 0.97, 0.5),
    job("ns", 0.05, 0.102, 0.9),  # collapsed: chance accuracy on 10 classes
    job("proxns", 0.25, 0.984, 0.4),
    job("proxns", 0.5, 0.978, 0.6),
    # dominated on the pruned share by the job above, but removes the most FLOPs of all
    job("proxns", 0.5, 0.975, 0.55, seed=1, flops_slim=int(FLOPS_FULL * 0.08)),
    job("proxns", 1.0, 0.965, 0.75),
    job("proxns", 1.0, 0.962, 0.7, seed=1),
]


@pytest.fixture(autouse=True)
def signed_in(browser, live_server: str, admin_token: str) -> None:
    sign_in(browser, live_server, admin_token)


@pytest.fixture(scope="module")
def experiment(store_url: str, api: httpx.Client) -> dict:
    exp_id, _ = seed_jobs(store_url, JOBS, experiment="frontier: digits vgg11 λ sweep")
    return api.get(f"/api/experiments/{exp_id}").json()


def open_page(browser, url: str) -> None:
    load_page(browser, url, "#headline-plot svg")


def page_points(browser) -> list[dict]:
    return json.loads(browser.find_element(By.ID, "headline-plot").get_attribute("data-points"))


def x_of(p: dict, axis: str) -> float:
    if axis == "pruned":
        return p["pruned_fraction"]
    slim, full = (
        (p["flops_slim"], p["flops_full"]) if axis == "flops" else (p["params_slim"], p["params_full"])
    )
    return 1 - slim / full


def final_acc(p: dict) -> float:
    return p["acc_finetuned"] if p["acc_finetuned"] is not None else p["acc_slim"]


def pareto(points: list[dict], axis: str, active=lambda p: True) -> set[int]:
    """Job ids of each method's non-dominated points, by the definition (O(n²))."""
    pts = [(p["job_id"], p["method"], x_of(p, axis), final_acc(p)) for p in points if active(p)]
    return {
        i
        for i, m, x, y in pts
        if not any(m2 == m and j != i and x2 >= x and y2 >= y and (x2 > x or y2 > y) for j, m2, x2, y2 in pts)
    }


def shown_frontier(browser) -> set[int]:
    return {p["job_id"] for p in page_points(browser) if p["frontier"]}


def test_frontier_follows_the_api_numbers_and_the_x_axis_switch(browser, live_server, experiment, output_dir):
    browser.get_log("browser")
    exp_id, api_points = experiment["id"], experiment["points"]
    assert len(api_points) == len(JOBS)
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    points = page_points(browser)
    by_id = {p["job_id"]: p for p in api_points}
    assert {p["job_id"] for p in points} == set(by_id)
    for p in points:
        assert p["x"] == pytest.approx(by_id[p["job_id"]]["pruned_fraction"])
        assert p["y"] == pytest.approx(final_acc(by_id[p["job_id"]]))
    want = pareto(api_points, "pruned")
    assert shown_frontier(browser) == want
    ids = [p["job_id"] for p in api_points]
    assert ids[7] not in want  # the seed-1 λ 0.5 job is dominated on the pruned share
    # dominated markers are faded but still focusable
    for g in browser.find_elements(By.CSS_SELECTOR, "#headline-plot .point"):
        opacity = g.find_element(By.CSS_SELECTOR, "*").get_attribute("opacity")
        on_front = int(g.get_attribute("data-job-id")) in want
        assert opacity == (None if on_front else "0.3"), g.get_attribute("aria-label")
        assert g.get_attribute("data-frontier") == str(on_front).lower()
        assert g.get_attribute("tabindex") == "0"
    lines = browser.find_elements(By.CSS_SELECTOR, "#headline-plot .frontiers polyline")
    assert sorted(line.get_attribute("data-method") for line in lines) == ["ns", "ns", "proxns"]
    # NS's front ends at the collapsed run, pinned below the axis: that last link is dashed
    dashed = browser.find_elements(By.CSS_SELECTOR, "#headline-plot .frontiers polyline.to-pinned")
    assert [d.get_attribute("data-method") for d in dashed] == ["ns"]
    browser.save_screenshot(str(output_dir / "experiment-frontier.png"))

    # The x-axis switch, with the keyboard: FLOPs removed. The address keeps it.
    browser.find_element(By.ID, "plot-x-pruned").send_keys(Keys.ARROW_RIGHT)
    wait_for(
        lambda: browser.find_element(By.ID, "headline-plot").get_attribute("data-x-axis") == "flops",
        what="x = flops",
    )
    assert "x=flops" in browser.current_url
    for p in page_points(browser):
        assert p["x"] == pytest.approx(x_of(by_id[p["job_id"]], "flops"))
    want_flops = pareto(api_points, "flops")
    assert shown_frontier(browser) == want_flops
    assert want_flops != want and ids[7] in want_flops
    assert "FLOPs removed (%)" in browser.find_element(By.ID, "headline-svg").text
    browser.save_screenshot(str(output_dir / "experiment-frontier-flops.png"))
    open_page(browser, f"{live_server}/#/experiments/{exp_id}?x=params")
    assert browser.find_element(By.ID, "plot-x-params").is_selected()
    assert shown_frontier(browser) == pareto(api_points, "params")
    # a phone: the plot fits the screen, the parallel coordinates scroll sideways in their card
    browser.set_window_size(390, 844)
    try:
        open_page(browser, f"{live_server}/#/experiments/{exp_id}")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        assert shown_frontier(browser) == want
        browser.save_screenshot(str(output_dir / "experiment-frontier-phone.png"))
    finally:
        browser.set_window_size(1366, 900)
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def test_plot_bugs_of_item_9(browser, live_server, experiment, output_dir):
    """Collapsed run pinned below a readable axis; baseline square on top; λ labels; tooltip fields."""
    browser.get_log("browser")
    exp_id, api_points = experiment["id"], experiment["points"]
    ids = [p["job_id"] for p in api_points]
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    svg = browser.find_element(By.ID, "headline-svg")

    # (a) the 96–100 % band fills the plot: the 0.962 and 0.991 markers are far apart, and the
    # collapsed run sits at the bottom edge, labelled with its real value.
    def centre_y(job_id: int) -> float:
        return browser.execute_script(
            "const b = document.querySelector(`#headline-svg .point[data-job-id='${arguments[0]}']`)"
            ".getBoundingClientRect(); return b.top + b.height / 2",
            job_id,
        )

    plot_height = svg.size["height"]
    assert centre_y(ids[9]) - centre_y(ids[0]) > 0.4 * plot_height
    collapsed = browser.find_element(By.CSS_SELECTOR, f"#headline-svg .point[data-job-id='{ids[4]}']")
    assert "10.2 % accuracy" in collapsed.get_attribute("aria-label")
    assert "below the axis" in collapsed.get_attribute("aria-label")
    assert centre_y(ids[4]) > centre_y(ids[9])
    notes = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#headline-svg .pinned-note")]
    assert notes == ["↓ 10.2 % · λ 0.05"]
    assert browser.find_elements(By.CSS_SELECTOR, "#headline-svg .axis-break")
    # (e) the collapsed run is drawn hollow red, and its tooltip gives the API's warning
    shape = collapsed.find_element(By.CSS_SELECTOR, "*")
    assert (shape.get_attribute("fill"), shape.get_attribute("stroke")) == ("#ffffff", "#dc2626")
    ActionChains(browser).move_to_element(collapsed).perform()
    tooltip = browser.find_element(By.ID, "plot-tooltip")
    wait_for(tooltip.is_displayed, what="the tooltip")
    warning = api_points[4]["warnings"][0]
    assert warning["code"] == "chance_accuracy" and warning["message"] in tooltip.text
    for field in ("Width", "β", "Prune ratio", "Seed", "Epochs", "λ"):
        assert field in tooltip.text, field
    assert "0.25" in tooltip.text  # the width

    # (b) the baseline square, drawn under an NS triangle on the same spot before, is on top
    baseline = browser.find_element(By.CSS_SELECTOR, f"#headline-svg .point[data-job-id='{ids[0]}']")
    hit = browser.execute_script(
        "const b = arguments[0].getBoundingClientRect();"
        "const el = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);"
        "return el && el.closest('.point') ? el.closest('.point').dataset.jobId : null",
        baseline,
    )
    assert hit == str(ids[0])

    # (c) λ labels beside the markers, and a toggle that hides them (kept in the address)
    labels = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#headline-svg .lam-labels text")]
    assert "λ 0.25" in labels and "λ 0.02" in labels and len(labels) >= 5
    browser.find_element(By.ID, "plot-labels").click()
    wait_for(
        lambda: not browser.find_elements(By.CSS_SELECTOR, "#headline-svg .lam-labels"), what="labels hidden"
    )
    assert "labels=0" in browser.current_url
    browser.find_element(By.ID, "plot-labels").click()
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#headline-svg .lam-labels text"), what="labels back"
    )
    browser.find_element(By.ID, "headline-plot").screenshot(str(output_dir / "experiment-plot-item9.png"))
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def test_exports_carry_title_axis_labels_and_legend(browser, live_server, experiment, output_dir):
    browser.get_log("browser")
    exp_id, name = experiment["id"], experiment["name"]
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    downloads: Path = browser.download_dir
    started = time.time() - 1
    browser.find_element(By.ID, "save-svg").click()
    text = wait_for_download(downloads, ".svg", after=started).read_text()
    for needed in (
        f">{name}</text>",
        ">channels pruned (%)</text>",
        ">test accuracy (%)</text>",
        ">ProxNS</text>",
        ">NS</text>",
    ):
        assert needed in text, needed
    browser.find_element(By.ID, "save-png").click()
    png = wait_for_download(downloads, ".png", after=started).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 600 and height > 400
    (output_dir / "experiment-plot-export-titled.png").write_bytes(png)
    # the SVG the PNG is drawn from (export.js's svgText of the same element) has the title too
    rasterised = browser.execute_async_script(
        "const done = arguments[0]; import('/js/export.js').then((m) => "
        "done(m.svgText(document.getElementById('headline-svg'))));"
    )
    assert f">{name}</text>" in rasterised
    browser.find_element(By.ID, "save-csv").click()
    rows = wait_for_download(downloads, ".csv", after=started).read_text().splitlines()
    assert rows[0].startswith("job_id,method,lam,beta") and "frontier" in rows[0]
    assert len(rows) == len(JOBS) + 1
    # the parallel coordinates export too
    browser.find_element(By.ID, "pc-save-svg").click()
    pc = wait_for_download(downloads, "-parcoords.svg", after=started).read_text()
    assert f"{name}: parameters and results</text>" in pc and ">accuracy</text>" in pc
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def active_ids(browser) -> set[int]:
    return {p["job_id"] for p in page_points(browser) if p["active"]}


def axis_state(browser, key: str) -> dict:
    axes = json.loads(browser.find_element(By.ID, "parcoords").get_attribute("data-axes"))
    return next(a for a in axes if a["key"] == key)


def test_brushing_parallel_coordinates_filters_the_plot(browser, live_server, api, experiment, output_dir):
    browser.get_log("browser")
    takes = api.get("/api/meta").json()["method_fields"]
    exp_id, api_points = experiment["id"], experiment["points"]
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    axes = json.loads(browser.find_element(By.ID, "parcoords").get_attribute("data-axes"))
    # the swept fields that vary (λ, seed), then the four results
    assert [a["key"] for a in axes] == [
        "lam",
        "seed",
        "acc_final",
        "pruned_fraction",
        "flops_removed",
        "params_removed",
    ]
    lines = browser.find_elements(By.CSS_SELECTOR, "#parcoords-svg .pc-lines polyline")
    assert len(lines) == len(api_points)

    # Mouse: drag along the λ axis over its upper half.
    hit = browser.find_element(By.CSS_SELECTOR, "#parcoords-svg [data-axis='lam'] .pc-hit")
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center'})", hit
    )  # offsets are from its in-view centre
    h = hit.size["height"]
    ActionChains(browser).move_to_element_with_offset(hit, 0, -h // 2 + 2).click_and_hold().move_by_offset(
        0, h // 2 - 10
    ).release().perform()
    lo, hi = wait_for(lambda: axis_state(browser, "lam")["brush"], what="a λ brush")
    # the baseline takes no λ (meta's method_fields): it is on no λ range
    assert 0.0001 < lo < 0.05 and hi == 1.0, (lo, hi)
    want = {p["job_id"] for p in api_points if "lam" in takes[p["method"]] and lo <= p["lam"] <= hi}
    assert 0 < len(want) < len(api_points), (lo, hi)
    wait_for(lambda: active_ids(browser) == want, what="the plot to keep the brushed jobs")
    # the frontier is computed over the brushed jobs only
    assert shown_frontier(browser) == pareto(api_points, "pruned", lambda p: p["job_id"] in want)
    assert "brush=lam:" in browser.current_url
    assert "outside brush" in browser.find_element(By.ID, "headline-svg").text
    browser.save_screenshot(str(output_dir / "experiment-parcoords-brushed.png"))
    # the brush lives in the address: a fresh load shows the same filter
    url = browser.current_url
    open_page(browser, url)
    assert active_ids(browser) == want

    # Keyboard: Tab to the accuracy axis, an arrow starts a brush, shift+arrows grow it.
    browser.find_element(By.ID, "clear-brushes").click()
    wait_for(lambda: len(active_ids(browser)) == len(api_points), what="brushes cleared")
    browser.execute_script(
        "arguments[0].focus()", browser.find_element(By.CSS_SELECTOR, "#parcoords-svg [data-axis='seed']")
    )
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()  # to the next axis
    assert browser.switch_to.active_element.get_attribute("data-axis") == "acc_final"
    ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()
    for _ in range(3):
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ARROW_DOWN).key_up(Keys.SHIFT).perform()
    brush = wait_for(lambda: axis_state(browser, "acc_final")["brush"], what="an accuracy brush")
    assert browser.switch_to.active_element.get_attribute("data-axis") == "acc_final"  # focus kept
    lo, hi = brush
    want = {p["job_id"] for p in api_points if lo <= final_acc(p) <= hi}
    assert api_points[4]["job_id"] not in want and len(want) > 1
    wait_for(lambda: active_ids(browser) == want, what="the plot to keep the jobs in the accuracy range")
    browser.find_element(By.ID, "parcoords").screenshot(str(output_dir / "experiment-parcoords.png"))
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    wait_for(lambda: axis_state(browser, "acc_final")["brush"] is None, what="Escape to clear")
    assert len(active_ids(browser)) == len(api_points)
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def test_organise_the_experiment_and_find_it_in_the_list(browser, live_server, store_url, api, output_dir):
    browser.get_log("browser")
    queued = {**job("proxns", 0.5, 0.0, 0.0), "status": "queued", "metrics": False}
    exp_id, seeded = seed_jobs(store_url, [*JOBS[:3], queued], experiment="organise me")
    other, _ = seed_jobs(store_url, JOBS[:1], experiment="to be deleted")
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")

    # cancel all: the queued job is cancelled, the finished ones stay as they were
    cancel = browser.find_element(By.ID, "cancel-all")
    assert cancel.text == "Cancel all (1)"
    cancel.click()
    wait_for(
        lambda: api.get(f"/api/jobs/{seeded[3]}").json()["status"] == "cancelled",
        what="the queued job cancelled",
    )
    assert [api.get(f"/api/jobs/{i}").json()["status"] for i in seeded[:3]] == ["succeeded"] * 3
    wait_for(
        lambda: browser.find_element(By.ID, "cancel-all").text == "Cancel all", what="nothing left to cancel"
    )

    # rename inline: the title becomes a box; Enter saves
    browser.find_element(By.ID, "rename").click()
    box = browser.find_element(By.ID, "rename-input")
    box.clear()
    box.send_keys("renamed: tidy sweep", Keys.ENTER)
    wait_for(
        lambda: browser.find_element(By.ID, "experiment-name").text == "renamed: tidy sweep",
        what="the new name",
    )
    # tags and note, with the shared widgets (folded away until the experiment has some)
    browser.find_element(By.CSS_SELECTOR, "#exp-organise-details > summary").click()
    tag_box = browser.find_element(By.ID, "exp-tags-input")
    tag_box.send_keys("paper, digits", Keys.ENTER)
    wait_for(
        lambda: api.get(f"/api/experiments/{exp_id}").json()["tags"] == ["paper", "digits"], what="tags saved"
    )
    note = browser.find_element(By.ID, "exp-note-text")
    note.send_keys("NS collapsed at proxns's λ")
    browser.find_element(By.ID, "exp-note-save").click()
    wait_for(
        lambda: api.get(f"/api/experiments/{exp_id}").json()["note"] == "NS collapsed at proxns's λ",
        what="note saved",
    )
    browser.find_element(By.ID, "exp-archive").click()
    wait_for(lambda: api.get(f"/api/experiments/{exp_id}").json()["archived_at"], what="archived")
    wait_for(
        lambda: browser.find_element(By.ID, "exp-archive").text == "Unarchive", what="the button to flip"
    )
    add = browser.find_element(By.ID, "add-jobs")
    assert add.get_attribute("href").endswith(f"#/sweep?experiment={exp_id}")
    browser.save_screenshot(str(output_dir / "experiment-organise.png"))

    # all of it survives a reload
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    assert browser.find_element(By.ID, "experiment-name").text == "renamed: tidy sweep"
    chips = [
        c.get_attribute("data-tag")
        for c in browser.find_elements(By.CSS_SELECTOR, "#exp-tags-list [data-tag]")
    ]
    assert chips == ["paper", "digits"]
    assert browser.find_element(By.ID, "exp-note-text").get_attribute("value") == "NS collapsed at proxns's λ"
    assert browser.find_element(By.ID, "exp-archive").text == "Unarchive"

    # the list: archived hidden by default, shown with the toggle; tags shown; search by tag
    browser.get(f"{live_server}/#/experiments")

    def rows() -> set[int]:
        return {
            int(r.get_attribute("data-experiment-id"))
            for r in browser.find_elements(By.CSS_SELECTOR, "#experiments-table tbody tr")
        }

    wait_for(lambda: other in rows(), what="the experiments list")
    assert exp_id not in rows()
    browser.find_element(By.ID, "experiments-archived").click()
    wait_for(lambda: exp_id in rows(), what="archived experiments shown")
    assert "archived=all" in browser.current_url
    row = browser.find_element(By.CSS_SELECTOR, f"#experiments-table tr[data-experiment-id='{exp_id}']")
    assert "paper" in row.text and "archived" in row.text
    browser.find_element(By.ID, "experiments-q").send_keys("paper")
    wait_for(lambda: rows() == {exp_id}, what="the search to keep the tagged experiment")
    browser.save_screenshot(str(output_dir / "experiments-list-search.png"))

    # delete, confirmed in the page; then the list, and the API answers 404
    open_page(browser, f"{live_server}/#/experiments/{other}")
    browser.find_element(By.ID, "exp-delete").click()
    browser.find_element(By.ID, "exp-delete-confirm").click()
    wait_for(lambda: browser.current_url.endswith("#/experiments"), what="the list after deleting")
    assert api.get(f"/api/experiments/{other}").status_code == 404
    assert "deleted" in wait_for(lambda: browser.find_element(By.ID, "flash").text, what="the flash")
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def test_points_and_rows_join_the_compare_selection(browser, live_server, experiment, output_dir):
    browser.get_log("browser")
    exp_id, ids = experiment["id"], [p["job_id"] for p in experiment["points"]]
    open_page(browser, f"{live_server}/#/experiments/{exp_id}")
    browser.execute_script("sessionStorage.removeItem('proxns-selection')")
    link = browser.find_element(By.ID, "compare-selected")

    def selected() -> list[int]:
        return browser.execute_script("return JSON.parse(sessionStorage.getItem('proxns-selection') || '[]')")

    # shift+click a marker, S on another (keyboard), and a row's checkbox
    first = browser.find_element(By.CSS_SELECTOR, f"#headline-svg .point[data-job-id='{ids[2]}']")
    ActionChains(browser).key_down(Keys.SHIFT).click(first).key_up(Keys.SHIFT).perform()
    assert "#/experiments/" in browser.current_url  # selected, not opened
    browser.execute_script(
        "document.querySelector(`#headline-svg .point[data-job-id='${arguments[0]}']`).focus()", ids[5]
    )
    ActionChains(browser).send_keys("s").perform()
    box = browser.find_element(
        By.CSS_SELECTOR, f"#experiment-jobs-table tr[data-job-id='{ids[6]}'] input.select-job"
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    wait_for(lambda: selected() == [ids[2], ids[5], ids[6]], what="three selected jobs")
    assert link.text == "Compare selected (3)"
    assert link.get_attribute("href").endswith(f"#/compare?jobs={ids[2]},{ids[5]},{ids[6]}")
    marked = {
        int(g.get_attribute("data-job-id"))
        for g in browser.find_elements(By.CSS_SELECTOR, "#headline-svg .point.selected")
    }
    assert marked == {ids[2], ids[5], ids[6]}
    # the markers are toggle buttons: aria-pressed says which are selected
    pressed = {
        int(g.get_attribute("data-job-id"))
        for g in browser.find_elements(
            By.CSS_SELECTOR, "#headline-svg .point[role='button'][aria-pressed='true']"
        )
    }
    assert pressed == marked
    # shift+click again drops it
    first = browser.find_element(By.CSS_SELECTOR, f"#headline-svg .point[data-job-id='{ids[2]}']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", first)
    ActionChains(browser).key_down(Keys.SHIFT).click(first).key_up(Keys.SHIFT).perform()
    wait_for(lambda: selected() == [ids[5], ids[6]], what="the job dropped from the selection")
    assert link.text == "Compare selected (2)"
    browser.execute_script("sessionStorage.removeItem('proxns-selection')")
    assert severe_console_errors(browser, allow=is_favicon_404) == []


def test_an_experiment_of_256_jobs_plots_every_job(browser, live_server, store_url, api, output_dir):
    """256 jobs (the sweep limit): every one on the plot and in the parallel coordinates; the time
    to the first chart is recorded in test-output/ (a measurement, not asserted)."""
    browser.get_log("browser")
    jobs = [
        job(
            "proxns" if i % 2 else "ns",
            0.01 * (1 + i % 32),
            0.9 + 0.09 * ((i * 37) % 101) / 100,
            ((i * 53) % 97) / 100,
            seed=i // 64,
        )
        for i in range(256)
    ]
    exp_id, ids = seed_jobs(store_url, jobs, experiment="256 jobs")
    want = pareto(api.get(f"/api/experiments/{exp_id}").json()["points"], "pruned")
    browser.get("about:blank")
    started = time.monotonic()
    browser.get(f"{live_server}/#/experiments/{exp_id}")
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#headline-svg .point")) == 256,
        what="256 markers",
        every=0.05,
    )
    first_chart_s = time.monotonic() - started
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "#parcoords-svg .pc-lines polyline")) == 256,
        what="256 lines",
    )
    both_s = time.monotonic() - started
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd,"
        " js_bytes: performance.getEntriesByType('resource').filter((r) => r.name.endsWith('.js'))"
        ".reduce((s, r) => s + (r.decodedBodySize || 0), 0)}"
    )
    assert shown_frontier(browser) == want
    (output_dir / "experiment-256-timing.json").write_text(
        json.dumps(
            {
                "jobs": 256,
                "first_chart_s": round(first_chart_s, 3),
                "plot_and_parcoords_s": round(both_s, 3),
                **timing,
            },
            indent=1,
        )
    )
    browser.save_screenshot(str(output_dir / "experiment-256-jobs.png"))
    assert severe_console_errors(browser, allow=is_favicon_404) == []
