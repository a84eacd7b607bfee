"""/dashboard in a real headless Chromium (Debian's package, driven by Playwright), served the way --serve serves it.

The screenshots go to the test's temporary folder; with UPDATE_SCREENSHOTS=1 they replace docs/dashboard-light.png
and docs/dashboard-dark.png, the ones the README shows.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.data import generate_rows
from sandbox.history import synthetic_runs
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import load_settings
from sync_core.state.records import JobStats, utcnow
from sync_core.state.store import StateStore
from tests.functions_helpers import REPO_ROOT, App, serving

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY = "browser-test-key"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: scripts/setup-browser.sh installs Debian's package where it can (root + apt-get)",
)


@pytest.fixture
def app(sync_env: dict[str, str], leadpier: FakeLeadPier) -> App:
    today = utcnow().astimezone(load_settings().timezone).date()
    for day in (today, today - timedelta(days=1)):
        leadpier.set_rows(day, generate_rows(300, day))
    return App()


@pytest.fixture
def history(app: App, le: FakeLE) -> dict[str, Any]:
    """A week of made-up runs before now, then real timer runs against the stand-ins: two good, one LE refused
    (warning), one LE failed (failed)."""
    settings = load_settings()
    store = StateStore(settings.storage)
    store.ensure_container()
    past = list(synthetic_runs(utcnow() - timedelta(minutes=30), tz=settings.timezone))[12:]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.save_run, past))

    # Counted as the runs that wrote them would have, so the page shows a week of bookkeeping done, not repairs due.
    def count_past(stats: JobStats) -> None:
        for record in past:
            stats.count(record)

    store.update_job_stats(count_past)
    app.tick()
    le.faults.add("put", status=200, body={"success": False, "message": "campaign table is being rebuilt"})
    app.tick()
    app.tick()
    le.faults.add("put", status=400, body={"success": False, "message": "bad payload"})
    app.tick()
    real = store.list_runs(4)
    assert [r.status for r in real] == ["failed", "success", "warning", "success"]
    return {"store": store, "failed": real[0], "total": len(past) + len(real)}


@pytest.fixture
def served(history: dict[str, Any]) -> Iterator[str]:
    with serving(KEY) as base:
        yield base


@pytest.fixture
def three_runs(app: App, le: FakeLE) -> Iterator[tuple[str, list[Any]]]:
    """Three real timer runs against the stand-ins, a success, a warning and a failure, close together."""
    app.tick()
    le.faults.add("put", status=200, body={"success": False, "message": "campaign table is being rebuilt"})
    app.tick()
    le.faults.add("put", status=400, body={"success": False, "message": "bad payload"}, times=2)
    app.tick()
    runs = StateStore(load_settings().storage).list_runs(3)
    assert sorted(r.status for r in runs) == ["failed", "success", "warning"]
    with serving(KEY) as base:
        yield base, runs


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def open_dashboard(browser: Any, base: str, scheme: str, width: int = 1280) -> tuple[Any, list[str], list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    response = page.goto(f"{base}/dashboard?code={KEY}", wait_until="load")
    assert response is not None and response.status == 200
    return page, requests, problems


def screenshot_folder(tmp_path: Path) -> Path:
    return REPO_ROOT / "docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


# Where a click at each column and each coloured part lands: its own link, or (near the top of a full column) a part
# of the same hour. Checked in the page, so every one of the week's marks is tried at once.
WHERE_CLICKS_LAND = """() => [...document.querySelectorAll('#runs-chart a')].map(a => {
  const mark = a.querySelector('rect'), box = mark.getBoundingClientRect();
  const y = mark.classList.contains('hour') ? box.top + 1 : box.top + box.height / 2;
  const hit = document.elementFromPoint(box.left + box.width / 2, y);
  const hour = mark.closest('g'), status = [...mark.classList].find(c => c.startsWith('s-'));
  return {href: a.getAttribute('href'), kind: mark.getAttribute('class'), since: hour.dataset.since,
          status: status ? status.slice(2) : null, count: Number(mark.dataset.count), width: box.width,
          own: hit === mark, same_hour: !!hit && hit.closest('g') === hour};
})"""


def marks_land_and_open_their_runs(page: Any, base: str) -> list[dict[str, Any]]:
    """Every column and coloured part is hit by a click at it, and its link lists as many runs as it shows."""
    marks = page.evaluate(WHERE_CLICKS_LAND)
    assert marks
    for mark in marks:
        assert mark["own"] or (mark["kind"] == "hour" and mark["same_hour"]), mark

    def opened(mark: dict[str, Any]) -> list[dict[str, Any]]:
        with urllib.request.urlopen(base + mark["href"], timeout=30) as answer:
            return list(json.load(answer)["runs"])

    with ThreadPoolExecutor(4) as pool:  # the links of a week: a few hundred, asked as a browser would
        for mark, runs in zip(marks, pool.map(opened, marks), strict=True):
            assert len(runs) == mark["count"], mark
            assert all(r["status"] == mark["status"] for r in runs if mark["status"]), mark
    return list(marks)


def labels_do_not_overlap(page: Any) -> None:
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.xlabels span')].map(s => s.getBoundingClientRect())"
        ".map(b => [b.left, b.right])"
    )
    assert len(boxes) >= 6
    assert all(left_next >= right for (_, right), (left_next, _) in itertools.pairwise(boxes)), boxes


def test_the_dashboard_at_a_week(browser: Any, served: str, history: dict[str, Any], tmp_path: Path) -> None:
    page, requests, problems = open_dashboard(browser, served, "light")
    assert problems == []
    assert requests and all(url.startswith(served + "/") or url.startswith("data:") for url in requests), requests

    marks = marks_land_and_open_their_runs(page, served)
    hours = [m for m in marks if m["kind"] == "hour"]
    assert 7 * 24 - 1 <= len(hours) <= 7 * 24 and sum(m["count"] for m in hours) <= history["total"]
    assert min(m["width"] for m in hours) >= 4  # a column a pointer can find, at a week of runs
    failed = history["failed"]
    assert page.locator("#problems").inner_text().count(failed.error) == 1
    assert "Every 10 minutes".lower() in page.locator("#next-run").inner_text().lower()

    folder = screenshot_folder(tmp_path)
    page.screenshot(path=str(folder / "dashboard-light.png"), full_page=True)
    dark, _, dark_problems = open_dashboard(browser, served, "dark")
    assert dark_problems == []
    dark.screenshot(path=str(folder / "dashboard-dark.png"), full_page=True)
    phone, _, phone_problems = open_dashboard(browser, served, "light", width=360)
    assert phone_problems == []
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # nothing sideways on a phone
    labels_do_not_overlap(phone)
    labels_do_not_overlap(page)
    phone.screenshot(path=str(folder / "dashboard-phone.png"), full_page=True)

    # The coloured part of the last hour holding the failed run opens a list with that run in it.
    part = page.locator(f'#runs-chart g[data-since="{_hour(failed)}"] rect.seg.s-failed')
    part.click()
    page.wait_for_url("**/runs?*status=failed*")
    document = json.loads(page.locator("body").inner_text())
    assert failed.run_id in [r["run_id"] for r in document["runs"]]
    assert {r["status"] for r in document["runs"]} == {"failed"}
    # (The JSON document has no icon, so Chromium asks for /favicon.ico there and logs its 404: not the page's.)
    assert all(url.startswith(served + "/") or url.startswith("data:") for url in requests), requests


def test_the_dashboard_at_three_runs(browser: Any, three_runs: tuple[str, list[Any]], tmp_path: Path) -> None:
    base, runs = three_runs
    page, _, problems = open_dashboard(browser, base, "light")
    assert problems == []
    marks = marks_land_and_open_their_runs(page, base)
    parts = [m for m in marks if m["kind"].startswith("seg")]
    assert sorted(m["status"] for m in parts) == ["failed", "success", "warning"] and all(
        m["count"] == 1 for m in parts
    )
    for run in runs:  # each run's own coloured part opens exactly that run
        page.locator(f'#runs-chart g[data-since="{_hour(run)}"] rect.seg.s-{run.status}').click()
        page.wait_for_url(f"**/runs?*status={run.status}*")
        assert [r["run_id"] for r in json.loads(page.locator("body").inner_text())["runs"]] == [run.run_id]
        page.go_back()
    page.screenshot(path=str(screenshot_folder(tmp_path) / "dashboard-three-runs.png"), full_page=True)


def _hour(run: Any) -> str:
    """The chart's column of a run, as its data-since shows it."""
    from sync_core.web.dashboard.figures import run_time, window_start

    tz = load_settings().timezone
    start = window_start(run_time(run), tz)  # the last column of a chart drawn then is the run's hour
    return (start + timedelta(hours=7 * 24 - 1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_key_is_needed_in_the_browser_too(browser: Any, served: str) -> None:
    context = browser.new_context()
    assert context.request.get(f"{served}/dashboard").status == 401
    assert context.request.get(f"{served}/dashboard?code=not-the-key").status == 401
    assert context.request.get(f"{served}/dashboard?code={KEY}").status == 200


def test_screenshots_are_committed_where_the_readme_shows_them() -> None:
    for scheme in ("light", "dark"):
        assert (REPO_ROOT / "docs" / f"dashboard-{scheme}.png").stat().st_size > 10_000
    assert "docs/dashboard-light.png" in (REPO_ROOT / "README.md").read_text()
