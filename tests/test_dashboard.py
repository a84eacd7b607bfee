"""GET /dashboard: the HTML page over the same state as /status and /runs, called as the host calls it."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from html import unescape
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest

from sandbox.data import generate_rows
from sandbox.history import record_counted, synthetic_runs
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import load_settings
from sync_core.state.records import DayResult, RunRecord, new_run_id, utcnow
from sync_core.state.store import StateStore
from sync_core.web import dashboard
from sync_core.web.dashboard.figures import run_time
from sync_core.web.dashboard.render import _hour_link as hour_link
from sync_core.web.status import StatusDocument
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


def hour_groups(html: str) -> list[tuple[str, str]]:
    """(hour, markup) of every column of the chart."""
    return re.findall(r'<g data-since="([^"]+)">(.*?)</g>', html)


def segments(html: str) -> list[tuple[str, str, int]]:
    """(hour, status, runs) of every stacked part of the chart."""
    return [
        (since, status, int(count))
        for since, group in hour_groups(html)
        for status, count in re.findall(r'<rect class="seg s-(\w+)" data-count="(\d+)"', group)
    ]


def columns(html: str) -> dict[str, int]:
    """hour -> runs, of every column of the chart."""
    return {
        since: int(count)
        for since, group in hour_groups(html)
        for count in re.findall(r'<rect class="hour" data-count="(\d+)"', group)
    }


def run_links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="(/runs[^"]*)"', html)]


def hour_of(run: RunRecord) -> str:
    """The chart's column of a run: the UTC hour of its id, as the chart (in Asia/Kolkata, :30 in UTC) starts them."""
    moment = run_time(run)
    local = moment.astimezone(IST).replace(minute=0, second=0, microsecond=0)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listed(app: App, link: str) -> list[str]:
    """The run ids a link of the page opens, asked of GET /runs as the browser would."""
    path, _, query = unescape(link).partition("?")
    assert path == "/runs"
    params = dict(parse_qsl(query))
    return [r["run_id"] for r in body(app.get("runs", path, params=params))["runs"]]


# -- through the function ------------------------------------------------------------------------------


def test_with_no_runs_the_page_says_so_under_a_strict_policy(app: App) -> None:
    status, html, headers = page(app)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "No runs in the last 7 days yet" in html
    assert "no finished timer run in the last 7 days" in html and "LE has answered for no report day" in html
    assert segments(html) == [] and columns(html) == {}
    assert not re.search(r"<script|https?://(?!www\.w3\.org)", html)  # nothing loaded from anywhere
    day = today().isoformat()
    assert f"/logs/download?date={day}&amp;{KEY_QUERY}" in html


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("gzip;q=0", False), ("", False)],
)
def test_the_page_is_gzipped_for_a_browser_that_accepts_it(app: App, accept: str, gzipped: bool) -> None:
    response = app.get("dashboard", "/dashboard", params={"code": KEY}, headers={"Accept-Encoding": accept})
    raw = response.get_body()
    assert (response.headers.get("Content-Encoding") == "gzip") is gzipped
    html = (gzip.decompress(raw) if gzipped else raw).decode()
    assert html.startswith("<!doctype html>") and "No runs in the last 7 days yet" in html
    if gzipped:
        assert response.headers["Vary"] == "Accept-Encoding" and len(raw) < len(html) / 2


def test_one_timer_run_is_one_column_that_opens_it_and_its_report_days(app: App, le: FakeLE) -> None:
    app.tick()
    status, html, _ = page(app)
    assert status == 200
    (run,) = body(app.get("runs", "/runs"))["runs"]
    assert run["status"] in ("success", "warning")
    hour = hour_of(RunRecord.model_validate(run))
    assert segments(html) == [(hour, run["status"], 1)] and columns(html) == {hour: 1}
    hour_links = [h for h in run_links(html) if f"since={hour.replace('-', '').replace(':', '')[:13]}Z" in h]
    assert len(hour_links) == 2  # the column, and its one coloured part
    assert all(listed(app, link) == [run["run_id"]] for link in hour_links)
    days = re.findall(r"<tr><td>(\d{4}-\d{2}-\d{2})</td><td class=\"num\">([\d,]+)</td>", html)
    held = {d: len(records) for d, records in le.received_days().items()}
    assert {d: int(n.replace(",", "")) for d, n in days} == held
    timer_tile = html.split('id="last-timer-run"', 1)[1].split("</div>", 1)[0]
    assert run["run_id"] in timer_tile and run["status"] in timer_tile


def test_a_failed_run_is_listed_with_its_error_and_a_link_that_opens_it(app: App, le: FakeLE) -> None:
    le.faults.add("put", status=400, body={"success": False, "message": "bad payload"}, times=2)
    app.tick()
    _, html, _ = page(app)
    (run,) = body(app.get("runs", "/runs"))["runs"]
    assert run["status"] == "failed"
    problems = html.split('id="problems"', 1)[1].split("</section>", 1)[0]
    assert "failed" in problems and unescape(problems).count(run["error"]) == 1
    link = next(h for h in run_links(problems) if f"/runs/{run['run_id']}" in h)
    path, _, query = link.partition("?")
    assert query == KEY_QUERY
    run_id = path.rsplit("/", 1)[1]
    opened = app.get("runs", path, params={"code": KEY}, route_params={"run_id": run_id})
    assert opened.status_code == 200 and body(opened)["status"] == "failed"


def test_without_a_key_in_the_address_the_links_carry_none(app: App) -> None:
    app.tick()
    _, html, _ = page(app, key=None)
    assert run_links(html) and all("code=" not in link for link in run_links(html))


def test_a_full_week_of_runs_is_one_column_an_hour_each_opening_its_runs(sync_env: dict[str, str]) -> None:
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
    shown = [r for r in history if hour_of(r) >= min(columns(html))]  # the chart starts on the hour
    assert len(shown) >= len(history) - 6
    assert columns(html) == Counter(hour_of(r) for r in shown)
    assert Counter((h, s) for h, s, _ in segments(html) for _ in range(1)) == Counter(
        (hour_of(r), r.status) for r in {(hour_of(r), r.status): r for r in shown}.values()
    )
    assert {(h, s): n for h, s, n in segments(html)} == Counter((hour_of(r), r.status) for r in shown)
    assert len(columns(html)) >= 7 * 24 - 1
    assert len(html.encode()) <= 120_000  # the page's budget at a full week, uncompressed
    assert cache.reads == len(history)
    again = dashboard.collect({"code": KEY}, cache=cache, now=now + timedelta(seconds=2))
    assert cache.reads == len(history)  # nothing new: listings only
    assert columns(dashboard.render(again)) == columns(html)
    assert len(re.findall(r'<li><a class="run-link"', html)) == dashboard.PROBLEMS_SHOWN


def test_a_run_older_than_seven_days_is_left_out(sync_env: dict[str, str]) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    old, recent = synthetic_runs(utcnow() - timedelta(days=7), days=1, per_day=2)
    store.save_run(old)
    fresh = next(synthetic_runs(utcnow(), days=1, per_day=1))
    store.save_run(fresh)
    html = dashboard.render(dashboard.collect({}, cache=dashboard.RunCache()))
    assert segments(html) == [(hour_of(fresh), fresh.status, 1)]


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
    assert unescape(html).count(HOSTILE) >= 2  # the timer run's error, the failed run


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
    assert segments(html) == [(hour_of(run), "success", 1)]
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


# -- the figures ----------------------------------------------------------------------------------------


def _run(minutes_ago: int, now: datetime, **fields: object) -> RunRecord:
    from sync_core.state.records import new_run_id

    started = now - timedelta(minutes=minutes_ago)
    values: dict[str, object] = {"trigger": "timer", "status": "success", "finished_at": started} | fields
    return RunRecord(run_id=new_run_id(started), started_at=started, **values)  # type: ignore[arg-type]


def _tile(html: str, tile_id: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html.split(f'id="{tile_id}"', 1)[1].split("</div>", 1)[0]))


def test_the_headline_is_the_latest_timer_run_with_the_latest_manual_run_beside_it() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    timer = _run(9, now, sent_records=1234, matched_records=1200, unmatched_records=34)
    skipped = _run(5, now, status="skipped")
    manual = _run(2, now, trigger="manual", sent_records=0, dry_run=True, report_dates=["2026-02-01"])
    html = dashboard.render(
        dashboard.DashboardView(now, IST, "Asia/Kolkata", None, _status(), [timer, skipped, manual])
    )
    headline = _tile(html, "last-timer-run")
    assert "success" in headline and "1,234 sent" in headline and "1,200 matched" in headline
    beside = _tile(html, "last-manual-run")
    assert "0 sent" in beside and "2026-02-01" in beside and "dry run" in beside
    assert f"/runs/{timer.run_id}" in html.split('id="last-timer-run"', 1)[1].split("</div>", 1)[0]


def test_report_days_show_only_days_le_answered() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    answered = _run(
        30,
        now,
        days=[
            DayResult(report_date="2026-02-12", sent_records=5, matched_records=4, unmatched_records=1, le_success=True)
        ],
    )
    dry = _run(20, now, dry_run=True, days=[DayResult(report_date="2026-02-13", sent_records=9)])
    failed = _run(
        10, now, status="failed", days=[DayResult(report_date="2026-02-11", sent_records=3, error="LE update failed")]
    )
    days = dashboard.report_days([answered, dry, failed])
    assert [(d.report_date, d.sent_records, d.matched_records) for d in days] == [("2026-02-12", 5, 4)]


def test_unmatched_codes_are_totalled_by_reason_from_the_runs_counts() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    older = _run(20, now, unmatched_counts={"unknown_domain": 3}, unmatched_codes={"unknown_domain": ["a-xyz-e1"]})
    newest = _run(
        10,
        now,
        unmatched_counts={"invalid_format": 56, "unknown_domain": 7},
        unmatched_codes={"invalid_format": [f"bad-{i}" for i in range(20)], "unknown_domain": ["mta_0213-qqq-e1"]},
    )
    html = dashboard.render(dashboard.DashboardView(now, IST, "Asia/Kolkata", None, _status(), [older, newest]))
    section = unescape(
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split('id="unmatched"', 1)[1].split("</section>")[0]))
    )
    assert "56 invalid format" in section and "7 unknown domain" in section
    assert section.index("invalid format") < section.index("unknown domain")  # the most records first
    assert "bad-0" in section and "bad-19" not in section and "12 more in the run" in section
    assert "mta_0213-qqq-e1" in section and "a-xyz-e1" not in section  # the latest run's examples
    assert "met by 2 runs" in section


def test_the_schedule_is_said_in_words_beside_it() -> None:
    now = datetime(2026, 2, 13, 18, 10, tzinfo=IST)
    html = dashboard.render(dashboard.DashboardView(now, IST, "Asia/Kolkata", None, _status(), []))
    assert "0 */10 * * * *" in _tile(html, "next-run") and "every 10 minutes (UTC)" in _tile(html, "next-run")


def test_the_last_lines_of_todays_and_yesterdays_logs_are_on_the_page(app: App) -> None:
    app.tick()
    _, html, _ = page(app)
    logs = html.split('id="logs"', 1)[1].split("</section>", 1)[0]
    tail = body(app.get("logs", "/logs", params={"lines": "8"}))["logs"]
    assert tail and all(line[:400] in unescape(logs) for line in tail)
    assert f"No log for {(today() - timedelta(days=1)).isoformat()}" in logs


def test_a_backfill_is_one_run_in_its_hour_as_runs_lists_it(app: App) -> None:
    first, last = (today() - timedelta(days=3)).isoformat(), (today() - timedelta(days=2)).isoformat()
    response, queued = app.post_trigger({"from": first, "to": last})
    parent = body(response)["run_id"]
    for message in queued.get():
        app.work(message)
    _, html, _ = page(app)
    record = RunRecord.model_validate(body(app.get("runs", f"/runs/{parent}", route_params={"run_id": parent})))
    assert record.status in ("success", "warning") and record.report_dates == [first, last]
    assert segments(html) == [(hour_of(record), record.status, 1)]  # the parent, its two days folded in
    (column,) = [h for h in run_links(html) if "status=" not in h and "since=" in h]
    assert listed(app, column) == [parent]
    manual = _tile(html, "last-manual-run")
    assert record.status in manual and f"{record.sent_records:,} sent" in manual


@pytest.mark.parametrize("key", [None, KEY, "a b&c=d/é"])
@pytest.mark.parametrize(("count", "status"), [(1, ""), (3, "failed"), (25, "success")])
def test_a_chart_link_is_the_query_urlencode_makes(key: str | None, count: int, status: str) -> None:
    view = dashboard.DashboardView(utcnow(), IST, "Asia/Kolkata", None, None, [], key)
    query = {"since": "20261130T1430Z", "until": "20261130T1530Z"} | ({"status": status} if status else {})
    query |= {"limit": "100"} if count > 20 else {}
    query |= {"code": key} if key else {}
    assert hour_link(view, "20261130T1430Z", "20261130T1530Z", count, status) == "/runs?" + urlencode(query)


def test_a_run_recorded_but_not_counted_is_named_by_a_worker_that_keeps_the_weeks_listings(
    sync_env: dict[str, str],
) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    store.ensure_container()
    now = utcnow()
    history = list(synthetic_runs(now - timedelta(minutes=30), days=3, tz=settings.timezone))
    record_counted(store, history, now - timedelta(hours=1))  # each counted, the last complete look an hour ago
    cache = dashboard.RunCache()
    first = dashboard.render(dashboard.collect({}, cache=cache, now=now))
    assert "not yet written" not in first
    kept = {day for day in cache.listed_days()}
    assert len(kept) >= 2  # the window's days long over, listed once for this worker

    uncounted = RunRecord(
        run_id=new_run_id(now - timedelta(minutes=5)), trigger="timer", status="success",
        started_at=now - timedelta(minutes=5), finished_at=now - timedelta(minutes=4),
    )  # fmt: skip
    store.save_run(uncounted)  # its run could not write job_stats.json
    later = dashboard.render(dashboard.collect({}, cache=cache, now=now + timedelta(seconds=5)))
    assert "1 run(s) recorded with their counters or log lines not yet written" in later
    assert kept <= cache.listed_days()  # the repairs look-up's own listing dropped none of them
