"""/dashboard in a real headless Chromium (Debian's package, driven by Playwright), served the way --serve serves it.

The screenshots go to the test's temporary folder; with UPDATE_SCREENSHOTS=1 they replace docs/dashboard-light.png
and docs/dashboard-dark.png, the ones the README shows.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.data import generate_rows
from sandbox.history import synthetic_runs
from sandbox.serve import Host, _Server, index
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.records import utcnow
from sync_core.settings import load_settings
from sync_core.store import StateStore
from tests.functions_helpers import REPO_ROOT, App, load_function_app

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
    """Every HTTP route of the app on 127.0.0.1, through the same code as `scripts/sandbox.sh --serve`."""
    routes, _ = index(load_function_app())
    host = Host(routes, None, None, KEY, os.environ["AzureWebJobsStorage"], "0 */10 * * * *")
    server = _Server(0, host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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


def test_the_dashboard_in_a_real_browser(browser: Any, served: str, history: dict[str, Any], tmp_path: Path) -> None:
    page, requests, problems = open_dashboard(browser, served, "light")
    assert problems == []
    assert requests and all(url.startswith(served + "/") or url.startswith("data:") for url in requests), requests

    assert page.locator("#runs-chart rect.run").count() == history["total"]
    failed = history["failed"]
    mark = page.locator(f'#runs-chart rect[data-run-id="{failed.run_id}"]')
    assert mark.get_attribute("class") == "run s-failed"
    assert page.locator("#problems").inner_text().count(failed.error) == 1

    folder = screenshot_folder(tmp_path)
    page.screenshot(path=str(folder / "dashboard-light.png"), full_page=True)
    dark, _, dark_problems = open_dashboard(browser, served, "dark")
    assert dark_problems == []
    dark.screenshot(path=str(folder / "dashboard-dark.png"), full_page=True)
    phone, _, phone_problems = open_dashboard(browser, served, "light", width=390)
    assert phone_problems == []
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sideways on a phone
    phone.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)

    mark.click()
    page.wait_for_url(f"**/runs/{failed.run_id}?code={KEY}")
    document = json.loads(page.locator("body").inner_text())
    assert document["run_id"] == failed.run_id and document["status"] == "failed"
    # (The JSON document has no icon, so Chromium asks for /favicon.ico there and logs its 404: not the page's.)
    assert all(url.startswith(served + "/") or url.startswith("data:") for url in requests), requests


def test_the_key_is_needed_in_the_browser_too(browser: Any, served: str) -> None:
    context = browser.new_context()
    assert context.request.get(f"{served}/dashboard").status == 401
    assert context.request.get(f"{served}/dashboard?code=not-the-key").status == 401
    assert context.request.get(f"{served}/dashboard?code={KEY}").status == 200


def test_screenshots_are_committed_where_the_readme_shows_them() -> None:
    for scheme in ("light", "dark"):
        assert (REPO_ROOT / "docs" / f"dashboard-{scheme}.png").stat().st_size > 10_000
    assert "docs/dashboard-light.png" in (REPO_ROOT / "README.md").read_text()
