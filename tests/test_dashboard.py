"""GET /dashboard: the HTML page over the same state as /status and /runs, called as the host calls it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from html import unescape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from sandbox.data import generate_rows
from sandbox.history import synthetic_runs
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core import dashboard
from sync_core.records import RunRecord, utcnow
from sync_core.settings import load_settings
from sync_core.status import StatusDocument
from sync_core.store import StateStore
from tests.functions_helpers import App, body

IST = ZoneInfo("Asia/Kolkata")
KEY = "k3y-Tb6/+=="
KEY_QUERY = urlencode({"code": KEY})


def today() -> date:
    return datetime.now(IST).date()


@pytest.fixture
def app(sync_env: dict[str, str], leadpier: FakeLeadPier) -> App:
    for day in (today(), today() - timedelta(days=1)):
        leadpier.set_rows(day, generate_rows(40, day))
    return App()


def page(app: App, key: str | None = KEY) -> tuple[int, str, dict[str, str]]:
    response = app.get("dashboard", "/dashboard", params={"code": key} if key else {})
    return response.status_code, response.get_body().decode(), dict(response.headers)


def marks(html: str) -> list[tuple[str, str]]:
    """(status, run id) of every bar of the chart."""
    return re.findall(r'<rect class="run s-(\w+)" data-run-id="([^"]+)"', html)


def run_links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/runs/[^"]+)"', html)]


# -- through the function ------------------------------------------------------------------------------


def test_with_no_runs_the_page_says_so_under_a_strict_policy(app: App) -> None:
    status, html, headers = page(app)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "No runs in the last 7 days yet" in html
    assert "none yet" in html
    assert marks(html) == []
    assert not re.search(r"<script|https?://(?!www\.w3\.org)", html)  # nothing loaded from anywhere
    day = today().isoformat()
    assert f"/logs/download?date={day}&amp;{KEY_QUERY}" in html


def test_one_timer_run_is_one_bar_and_its_report_days(app: App, le: FakeLE) -> None:
    app.tick()
    status, html, _ = page(app)
    assert status == 200
    (run,) = body(app.get("runs", "/runs"))["runs"]
    assert marks(html) == [(run["status"], run["run_id"])]
    assert run["status"] in ("success", "warning")
    days = re.findall(r"<tr><td>(\d{4}-\d{2}-\d{2})</td><td class=\"num\">([\d,]+)</td>", html)
    held = {d: len(records) for d, records in le.received_days().items()}
    assert {d: int(n.replace(",", "")) for d, n in days} == held
    assert run["run_id"] in html and "Last run" in html


def test_a_failed_run_is_listed_with_its_error_and_a_link_that_opens_it(app: App, le: FakeLE) -> None:
    le.faults.add("put", status=400, body={"success": False, "message": "bad payload"}, times=2)
    app.tick()
    _, html, _ = page(app)
    (run,) = body(app.get("runs", "/runs"))["runs"]
    assert run["status"] == "failed"
    problems = html.split('id="problems"', 1)[1]
    assert "failed" in problems and unescape(problems).count(run["error"]) == 1
    link = next(h for h in run_links(problems) if run["run_id"] in h)
    path, _, query = link.partition("?")
    assert query == KEY_QUERY
    run_id = path.rsplit("/", 1)[1]
    opened = app.get("runs", path, params={"code": KEY}, route_params={"run_id": run_id})
    assert opened.status_code == 200 and body(opened)["status"] == "failed"


def test_without_a_key_in_the_address_the_links_carry_none(app: App) -> None:
    app.tick()
    _, html, _ = page(app, key=None)
    assert run_links(html) and all("code=" not in link for link in run_links(html))


def test_a_full_week_of_runs_is_drawn_one_bar_each_and_read_once(sync_env: dict[str, str]) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    store.ensure_container()
    now = utcnow()
    history = list(synthetic_runs(now, tz=settings.timezone))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.save_run, history))
    cache = dashboard.RunCache()
    view = dashboard.collect({"code": KEY}, cache=cache, now=now + timedelta(seconds=1))
    html = dashboard.render(view)
    assert len(history) == 7 * 144
    assert sorted(rid for _, rid in marks(html)) == sorted(r.run_id for r in history)
    by_status = {s: sum(1 for r in history if r.status == s) for s in ("failed", "warning", "skipped")}
    assert {s: sum(1 for m, _ in marks(html) if m == s) for s in by_status} == by_status
    assert cache.reads == len(history)
    again = dashboard.collect({"code": KEY}, cache=cache, now=now + timedelta(seconds=2))
    assert cache.reads == len(history)  # nothing new: listings only
    assert dashboard.render(again).count('<rect class="run') == len(history)
    assert len(re.findall(r'<li><a class="run-link"', html)) == dashboard.PROBLEMS_SHOWN


def test_a_run_older_than_seven_days_is_left_out(sync_env: dict[str, str]) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    old, recent = synthetic_runs(utcnow() - timedelta(days=7), days=1, per_day=2)
    store.save_run(old)
    fresh = next(synthetic_runs(utcnow(), days=1, per_day=1))
    store.save_run(fresh)
    html = dashboard.render(dashboard.collect({}, cache=dashboard.RunCache()))
    assert [rid for _, rid in marks(html)] == [fresh.run_id]


def test_storage_trouble_gives_a_page_that_says_so(sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LE_API_URL", "")
    response = App().get("dashboard", "/dashboard", params={"code": KEY})
    assert response.status_code == 503
    text = response.get_body().decode()
    assert "State unavailable" in text and "LE_API_URL" in text


# -- the renderer alone ------------------------------------------------------------------------------


def _status(**last: object) -> StatusDocument:
    document = {
        "scheduler": {
            "running": True,
            "schedule": "0 */10 * * * *",
            "timezone": "Asia/Kolkata",
            "next_run": "2026-02-13 23:40:00 IST",
        },
        "job_statistics": {
            "total_runs": 1,
            "successful_runs": 0,
            "failed_runs": 1,
            "skipped_runs": 0,
            "success_rate": "0.00%",
        },
        "last_execution": {
            "timestamp": "2026-02-13 23:33:35 IST",
            "status": "failed",
            "matched_records": 0,
            "unmatched_records": 0,
            "currently_running": False,
            "run_id": "20260213T180335123Z-1a2b3c",
            "duration_ms": 812,
            "report_dates": ["2026-02-13"],
            "sent_records": 0,
            "error": None,
            **last,
        },
        "unmatched_codes": {},
        "catch_up": {
            "oldest_unfinalized_day": "2026-02-12",
            "last_finalized_day": "2026-02-11",
            "catchup_days": 7,
            "pending_days": ["2026-02-12"],
            "beyond_window": [],
            "backfill": [],
        },
    }
    return StatusDocument.model_validate(document)


HOSTILE = '<script>alert("x")</script>&"\''


def test_everything_from_state_and_the_request_is_escaped() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    run = RunRecord(
        run_id="20260213T120000000Z-abcdef",
        trigger="timer",
        status="failed",
        started_at=now - timedelta(hours=1),
        error=HOSTILE,
        unmatched_codes={"invalid_format": [f'"><img src=x onerror=alert(1)>{HOSTILE}']},
    )
    view = dashboard.DashboardView(
        now=now,
        tz=IST,
        timezone_name="Asia/<Kolkata>",
        health=None,
        status=_status(error=HOSTILE),
        runs=[run],
        key='a"b&c<d>',
    )
    html = dashboard.render(view)
    assert "<script" not in html and "<img" not in html and 'a"b' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;&#x27;" in html
    assert "Asia/&lt;Kolkata&gt;" in html
    assert "code=a%22b%26c%3Cd%3E" in html
    assert unescape(html).count(HOSTILE) >= 3  # the last error, the failed run, the bar's tooltip


def test_the_page_works_with_one_run_and_no_health_verdict() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    run = RunRecord(
        run_id="20260213T120000000Z-abcdef",
        trigger="cli",
        status="success",
        started_at=now - timedelta(minutes=5),
        sent_records=12,
    )
    html = dashboard.render(dashboard.DashboardView(now, IST, "Asia/Kolkata", None, _status(), [run]))
    assert marks(html) == [("success", run.run_id)]
    assert "unknown" in html  # no health document: said, not guessed
    assert "in 0 s" not in html and "No failed or warning runs" in html


@pytest.mark.parametrize(
    "now", [datetime(2026, 3, 8, 7, 30, tzinfo=ZoneInfo("America/New_York")), datetime(2026, 2, 13, 0, 0, tzinfo=IST)]
)
def test_day_labels_follow_the_time_zone(now: datetime) -> None:
    tz = now.tzinfo
    assert tz is not None
    html = dashboard.render(dashboard.DashboardView(now, tz, str(tz), None, _status(), []))
    labels = [re.sub("<.*?>", "", label) for label in re.findall(r'<span style="left:[\d.]+%">(.*?)</span>', html)]
    local_days = [now.date() - timedelta(days=d) for d in range(7, -1, -1)]
    assert 6 <= len(labels) <= 7
    assert labels == [f"{d:%a %d %b}" for d in local_days if f"{d:%a %d %b}" in labels]  # in order, each once
