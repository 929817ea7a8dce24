"""Page load and time to first chart of the experiment page, and the bytes of JS the dashboard ships.

Starts the API (uvicorn, embedded SQLite store, no worker) on a free port, seeds one experiment of
256 finished jobs and one of 8 (the baseline, in the same process), opens each experiment page in
headless Chromium ``--runs`` times and prints the medians of:

- DOMContentLoaded and load (the Navigation Timing entry),
- time to first chart: navigation start → the headline plot's first marker in the DOM (a
  MutationObserver installed before any page script runs),
- every chart drawn (frontier plot and parallel coordinates, when the page has them),
- JS bytes: what the page fetched (decoded and gzip-compressed sizes) and all of frontend/js.

The 256-job figures are printed as ratios to the 8-job ones. No assertion: a measurement, not a test.

    .venv/bin/python benchmarks/bench_dashboard.py [--jobs 256] [--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from proxns_testkit import create_token, embedded_settings, free_port, service_env, start_api, stop_process  # noqa: E402
from proxns_testkit.processes import wait_healthy  # noqa: E402
from proxns_testkit.seed import seed_jobs  # noqa: E402
from tests.browser.conftest import CHROME_ARGS, find_browser  # noqa: E402 - the browser tests' Chromium

# Installed before any page script: records when the first headline marker and every chart appear.
OBSERVER = """
window.__bench = {firstChart: null, charts: {}};
new MutationObserver(() => {
  const b = window.__bench;
  if (b.firstChart === null && document.querySelector('#headline-plot svg .point')) b.firstChart = performance.now();
  for (const svg of document.querySelectorAll('figure svg, .chart-card svg')) {
    const id = svg.closest('[id]')?.id || 'chart';
    if (!(id in b.charts)) b.charts[id] = performance.now();
  }
}).observe(document, {childList: true, subtree: true});
"""


def sweep_jobs(count: int) -> list[dict]:
    """``count`` finished digits jobs: baseline, NS and proxns over λ, seeds and widths."""
    jobs = []
    lams = [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5]
    i = 0
    while len(jobs) < count:
        method = ("proxns", "ns", "proxns", "baseline")[i % 4]
        lam = lams[(i // 4) % len(lams)]
        seed = i // 32
        pruned = 0.0 if method == "baseline" else min(0.95, 0.2 + 0.5 * lam + 0.01 * (i % 7))
        acc = 0.985 - 0.08 * pruned**3 - 0.002 * (i % 5)
        config = {
            "dataset": "digits",
            "arch": "vgg",
            "depth": 11,
            "width": 0.125,
            "epochs": 3,
            "method": method,
        }
        if method != "baseline":
            config["lam"] = lam
        config["seed"] = seed
        jobs.append({"config": config, "acc": acc, "pruned": pruned})
        i += 1
    return jobs


def start_browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    chrome, chromedriver = find_browser()
    options.binary_location = chrome
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_window_size(1366, 900)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


def load_once(driver, url: str, timeout: float = 60) -> dict:
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script("return window.__bench && window.__bench.firstChart")
        if state:
            break
        time.sleep(0.05)
    else:
        logs = [e["message"] for e in driver.get_log("browser")]
        text = driver.execute_script("return document.getElementById('view')?.innerText.slice(0, 300)")
        raise RuntimeError(f"no chart on {url} within {timeout} s; page: {text!r}; console: {logs}")
    time.sleep(1.0)  # let the other charts of the page draw
    return driver.execute_script(
        """
        const nav = performance.getEntriesByType('navigation')[0];
        const js = performance.getEntriesByType('resource').filter(r => r.name.endsWith('.js'));
        return {
          domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
          firstChart: window.__bench.firstChart, charts: window.__bench.charts,
          jsFiles: js.length, jsDecoded: js.reduce((a, r) => a + r.decodedBodySize, 0),
          jsNames: js.map(r => new URL(r.name).pathname),
        };
        """
    )


def shipped_js() -> tuple[int, int, int]:
    """(files, bytes, gzip bytes) of every module under frontend/js."""
    files = sorted((REPO / "frontend" / "js").rglob("*.js"))
    raw = sum(f.stat().st_size for f in files)
    packed = sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)
    return len(files), raw, packed


def fetched_gzip(names: list[str]) -> int:
    return sum(len(gzip.compress((REPO / "frontend" / n.lstrip("/")).read_bytes(), 9)) for n in set(names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=256)
    parser.add_argument("--baseline-jobs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = embedded_settings(folder, frontend=True)
        token = create_token(settings.database_url, "bench", admin=True)
        big, _ = seed_jobs(settings.database_url, sweep_jobs(args.jobs), experiment=f"bench {args.jobs} jobs")
        small, _ = seed_jobs(
            settings.database_url,
            sweep_jobs(args.baseline_jobs),
            experiment=f"bench {args.baseline_jobs} jobs",
        )
        port = free_port()
        env = service_env(
            database_url=settings.database_url,
            broker_url="filesystem://",
            broker_dir=str(folder / "broker"),
            artifact_dir=str(folder / "artifacts"),
        )
        api = start_api(env, port, folder / "api.log", access_log=False)
        driver = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, api)
            size = len(
                httpx.get(
                    f"{base}/api/experiments/{big}", headers={"Authorization": f"Bearer {token}"}
                ).content
            )
            driver = start_browser(folder / "profile")
            driver.get(f"{base}/healthz")
            driver.execute_script("localStorage.setItem('proxns-token', arguments[0])", token)
            results = {}
            for label, exp in (("baseline", small), ("big", big)):
                runs = [load_once(driver, f"{base}/#/experiments/{exp}") for _ in range(args.runs)]
                results[label] = runs
        finally:
            if driver is not None:
                driver.quit()
            stop_process(api)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    n_files, raw, packed = shipped_js()
    last = results["big"][-1]
    print(f"experiment page, median of {args.runs} loads (cache disabled), 2-core VM, headless Chromium")
    print(f"GET /api/experiments/ID of {args.jobs} jobs: {size / 1024:.0f} KiB of JSON")
    print(f"| measure | {args.baseline_jobs} jobs (ms) | {args.jobs} jobs (ms) | ratio |")
    print("| --- | --- | --- | --- |")
    for key, name in (
        ("domContentLoaded", "DOMContentLoaded"),
        ("load", "load"),
        ("firstChart", "first chart"),
    ):
        a, b = med("baseline", key), med("big", key)
        print(f"| {name} | {a:.0f} | {b:.0f} | {b / a:.2f}× |")
    for chart in sorted(last["charts"]):
        a = statistics.median(r["charts"].get(chart, float("nan")) for r in results["baseline"])
        b = statistics.median(r["charts"].get(chart, float("nan")) for r in results["big"])
        print(f"| chart #{chart} drawn | {a:.0f} | {b:.0f} | {b / a:.2f}× |")
    print(
        f"JS the experiment page fetched: {last['jsFiles']} modules, {last['jsDecoded'] / 1024:.1f} KiB "
        f"({fetched_gzip(last['jsNames']) / 1024:.1f} KiB gzip -9)"
    )
    print(
        f"JS the dashboard ships (frontend/js): {n_files} modules, {raw / 1024:.1f} KiB ({packed / 1024:.1f} KiB gzip -9)"
    )
    print(
        json.dumps(
            {
                k: [{x: r[x] for x in ("domContentLoaded", "load", "firstChart")} for r in v]
                for k, v in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
