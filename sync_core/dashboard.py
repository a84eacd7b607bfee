"""GET /dashboard: one server-rendered HTML page over the state behind /health, /status and /runs."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from . import SERVICE_NAME, __version__
from .errors import SettingsError, StorageError
from .health import HealthDocument, health_document
from .records import FINAL_STATUSES, RunRecord, utcnow
from .responses import ApiResponse
from .schedule import DEFAULT_SCHEDULE
from .services import services
from .settings import read_environment
from .status import StatusDocument, status_document, timer_enabled
from .store import StateStore

log = logging.getLogger(__name__)

WINDOW = timedelta(days=7)
PROBLEMS_SHOWN = 10
CODES_SHOWN = 12
REFRESH_S = 60  # the page reloads itself (a meta refresh: no script), so it fills up as runs happen
HTML = "text/html"

# Everything the page needs is inline: no script at all, styles in one <style>, the icon a data: URI.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's links carry the function key
    "Cache-Control": "no-store",
}


# -- the run records of the window, kept between requests by ETag ----------------------------------------


class RunCache:
    """A worker keeps the run records it has read: a render lists the window's run ids (names only, one request per
    day) and reads only the runs it does not have or that may still change (1,008 reads the first time at a run
    every 10 minutes, a handful after)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, RunRecord] = {}
        self.reads = 0

    def window(self, store: StateStore, since: datetime, until: datetime) -> list[RunRecord]:
        days = [since.date() + timedelta(days=i) for i in range((until.date() - since.date()).days + 1)]
        run_ids = store.run_ids_on(days)
        with self._lock:
            wanted = [rid for rid in run_ids if rid not in self._records or not _settled(self._records[rid])]
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-read") as pool:
            fresh = list(zip(wanted, pool.map(store.load_run, wanted), strict=True))
        with self._lock:
            self.reads += len(wanted)
            for rid, record in fresh:
                if record is not None:
                    self._records[rid] = record
            listed = set(run_ids)
            for rid in set(self._records) - listed:  # older than the window, or removed
                del self._records[rid]
            records = [record for rid, record in self._records.items() if rid in listed]
        return sorted((r for r in records if since <= _when(r) <= until and not r.child_run_ids), key=_when)


def _settled(record: RunRecord) -> bool:
    """A record that no writer changes any more: finished, except a queued run recorded skipped, which the queue
    may deliver again. (A backfill parent is re-read too: it is left out of the chart, its days are drawn.)"""
    if record.status not in FINAL_STATUSES or record.child_run_ids:
        return False
    return not (record.status == "skipped" and record.trigger == "manual")


_cache = RunCache()


def _when(record: RunRecord) -> datetime:
    """Where a run sits in time: its start, or when it was queued."""
    return record.started_at or record.queued_at or record.finished_at or datetime.min.replace(tzinfo=UTC)


# -- what the page shows -------------------------------------------------------------------------------


@dataclass
class DayFigures:
    """One report day as LE holds it: the figures of the latest run that LE answered for it."""

    report_date: str
    runs: int = 0
    sent_records: int = 0
    matched_records: int | None = None
    unmatched_records: int | None = None
    sent_at: datetime | None = None


@dataclass
class DashboardView:
    now: datetime
    tz: tzinfo
    timezone_name: str
    health: HealthDocument | None
    status: StatusDocument | None
    runs: list[RunRecord] = field(default_factory=list)  # the window's runs, oldest first
    key: str | None = None  # the function key the browser sent as ?code=, carried on to the page's links
    problem: str | None = None  # settings or storage trouble: the page says so instead of the figures


def collect(
    params: Mapping[str, str],
    *,
    host_schedule: str = DEFAULT_SCHEDULE,
    host_run_on_startup: bool = False,
    host_problems: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    cache: RunCache | None = None,
) -> DashboardView:
    now = now or utcnow()
    env = read_environment(environ)
    key = params.get("code") or None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-health") as pool:
        health_future = pool.submit(
            health_document,
            host_schedule=host_schedule,
            host_run_on_startup=host_run_on_startup,
            host_problems=host_problems,
            environ=env,
            now=now,
        )
        try:
            here = services(environ)
            settings, store = here.settings, here.route_store
            status = status_document(settings, store, timer_enabled=timer_enabled(env), now=now)
            runs = (cache or _cache).window(store, now - WINDOW, now)
            view = DashboardView(now, settings.timezone, settings.timezone_name, None, status, runs, key)
        except (SettingsError, StorageError) as exc:
            log.error("/dashboard could not read the state: %s", exc)
            view = DashboardView(now, UTC, "UTC", None, None, [], key, problem=str(exc))
        view.health = health_future.result()
    return view


def dashboard_page(params: Mapping[str, str], **options: Any) -> ApiResponse:
    """The page; 503 (still a page) when settings or storage keep the figures from being read."""
    view = collect(params, **options)
    return ApiResponse(503 if view.problem else 200, render(view).encode(), HTML, dict(HEADERS))


def report_days(runs: list[RunRecord]) -> list[DayFigures]:
    """Per report day, newest first: how many runs covered it, and what the latest answered send carried."""
    days: dict[str, DayFigures] = {}
    for run in runs:  # oldest first, so the latest answered send wins
        for result in run.days:
            figures = days.setdefault(result.report_date, DayFigures(result.report_date))
            figures.runs += 1
            if result.le_success is not None or (run.dry_run and result.error is None):
                figures.sent_records = result.sent_records
                figures.matched_records = result.matched_records
                figures.unmatched_records = result.unmatched_records
                figures.sent_at = run.finished_at
    return [days[d] for d in sorted(days, reverse=True)]


def unmatched_codes(runs: list[RunRecord]) -> list[tuple[str, str, int]]:
    """(code, reason, runs that reported it), most frequent first, from each run's samples."""
    seen: Counter[tuple[str, str]] = Counter()
    for run in runs:
        for reason, codes in run.unmatched_codes.items():
            for code in set(codes):
                seen[(code, reason)] += 1
    ranked = sorted(seen.items(), key=lambda item: (-item[1], item[0][0]))
    return [(code, reason, count) for (code, reason), count in ranked[:CODES_SHOWN]]


# -- rendering ----------------------------------------------------------------------------------------------

STATUS_WORDS = {
    "success": "success",
    "warning": "warning",
    "failed": "failed",
    "skipped": "skipped",
    "queued": "queued",
    "running": "running",
}
REASONS = {"invalid_format": "invalid format", "unknown_domain": "unknown domain"}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _link(view: DashboardView, path: str, **query: str) -> str:
    """A same-origin link carrying the key the page was opened with (HTML-escaped, ready for an attribute)."""
    if view.key:
        query["code"] = view.key
    return _e(path + ("?" + urlencode(query) if query else ""))


def _local(moment: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(tz)
    return f"{local.strftime(fmt)} {local.tzname()}"


def _ago(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        text = f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    return f"in {text}" if delta.total_seconds() < 0 else f"{text} ago"


def _n(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    return f"{ms / 1000:.1f} s" if ms < 60_000 else f"{ms // 60_000} min {ms % 60_000 // 1000} s"


def _badge(status: str) -> str:
    return f'<span class="badge s-{_e(status)}">{_e(STATUS_WORDS.get(status, status))}</span>'


def render(view: DashboardView) -> str:
    """The whole page: everything from state is HTML-escaped; links carry the key from the request."""
    sections = [_header(view)]
    if view.problem:
        sections.append(f'<section class="card problem"><h2>State unavailable</h2><p>{_e(view.problem)}</p></section>')
    else:
        sections += [
            _at_a_glance(view),
            _chart(view),
            '<div class="columns">',
            _days(view),
            _codes(view),
            "</div>",
            _problems(view),
        ]
    sections.append(_footer(view))
    body = "\n".join(sections)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta name="referrer" content="no-referrer">
<title>{_e(SERVICE_NAME)}: dashboard</title>
<link rel="icon" href="{ICON}">
<style>{STYLE}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' "
    "height='16' rx='3' fill='%232563eb'/%3E%3Cpath d='M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z' fill='white'/%3E%3C/svg%3E"
)


def _header(view: DashboardView) -> str:
    health = view.health
    verdict = health.status if health else "unknown"
    reason = f'<p class="reason">{_e(health.reason)}</p>' if health and health.reason else ""
    return f"""<header>
  <div>
    <h1>LeadPier Sync</h1>
    <p class="sub">{_e(SERVICE_NAME)} · version {_e(__version__)} · times in {_e(view.timezone_name)}</p>
  </div>
  <div class="health h-{_e(verdict)}" id="health"><span class="dot"></span>{_e(verdict)}</div>
</header>
{reason}"""


def _at_a_glance(view: DashboardView) -> str:
    status = view.status
    assert status is not None
    last = status.last_execution
    tiles = []
    if last is None:
        tiles.append(
            '<div class="tile" id="last-run"><h3>Last run</h3><p class="big">none yet</p>'
            '<p class="muted">The first run fills this page.</p></div>'
        )
    else:
        finished = _parse_shown(last.timestamp, view.tz)
        ago = f'<p class="muted">{_e(_ago(view.now - finished))}</p>' if finished else ""
        running = '<p class="muted">a run is going now</p>' if last.currently_running else ""
        tiles.append(f"""<div class="tile" id="last-run"><h3>Last run</h3>
  <p class="big">{_badge(last.status)}</p><p>{_e(last.timestamp or "—")}</p>{ago}{running}</div>""")
        tiles.append(f"""<div class="tile"><h3>Took</h3><p class="big">{_e(_duration(last.duration_ms))}</p>
  <p class="muted">report days {_e(", ".join(last.report_dates) or "—")}</p></div>""")
        tiles.append(f"""<div class="tile"><h3>Sent</h3><p class="big">{_n(last.sent_records)}</p>
  <p class="muted">{_n(last.matched_records)} matched · {_n(last.unmatched_records)} unmatched</p></div>""")
    scheduler = status.scheduler
    next_run = _parse_shown(scheduler.next_run, view.tz)
    when = f'<p class="muted">{_e(_ago(view.now - next_run))}</p>' if next_run else ""
    tiles.append(f"""<div class="tile"><h3>Next run</h3><p class="big small">{_e(scheduler.next_run or "timer disabled")}</p>
  {when}<p class="muted">schedule <code>{_e(scheduler.schedule)}</code></p></div>""")
    stats = status.job_statistics
    tiles.append(f"""<div class="tile"><h3>Success rate</h3><p class="big">{_e(stats.success_rate)}</p>
  <p class="muted">{_n(stats.successful_runs)} of {_n(stats.total_runs)} runs · {_n(stats.skipped_runs)} skipped</p></div>""")
    if last is not None and last.error:
        tiles.append(f'<div class="tile wide error-text"><h3>Last error</h3><p>{_e(last.error)}</p></div>')
    return f'<section class="tiles">{"".join(tiles)}</section>'


def _parse_shown(text: str | None, tz: tzinfo) -> datetime | None:
    """/status shows `2026-02-13 23:33:35 IST`; the zone's name is dropped and the local time read back."""
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
    except ValueError:
        return None


CHART_W, CHART_H = 1000.0, 200.0
DRAW_ORDER = {"skipped": 0, "success": 1, "warning": 2, "failed": 3}
BAR_W = 3.0


def _chart(view: DashboardView) -> str:
    start = view.now - WINDOW
    runs = view.runs
    counts = Counter(r.status for r in runs)
    top = max((r.sent_records for r in runs), default=0) or 1
    marks = []
    # Drawn quiet first and troubled last: where bars overlap, a failed run stays on top, visible and clickable.
    for run in sorted(runs, key=lambda r: DRAW_ORDER.get(r.status, 1)):
        x = (_when(run) - start) / WINDOW * CHART_W
        x = min(max(x - BAR_W / 2, 0.0), CHART_W - BAR_W)
        if run.status == "skipped":
            height = 6.0
        else:
            height = max(run.sent_records / top * (CHART_H - 8), 4.0)
            if run.status == "failed":
                height = max(height, 28.0)
        title = f"{_local(_when(run), view.tz)} · {run.status} · {run.sent_records:,} sent" + (
            f" · {run.error}" if run.error else ""
        )
        marks.append(
            f'<a href="{_link(view, "/runs/" + quote(run.run_id, safe=""))}">'
            f'<rect class="run s-{_e(run.status)}" data-run-id="{_e(run.run_id)}" data-status="{_e(run.status)}" '
            f'x="{x:.1f}" y="{CHART_H - height:.1f}" width="{BAR_W}" height="{height:.1f}">'
            f"<title>{_e(title)}</title></rect></a>"
        )
    grid, labels = [], []
    local_start = start.astimezone(view.tz)
    midnight = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(1, 9):
        tick = midnight + timedelta(days=i)
        offset = (tick - start) / WINDOW
        if 0 < offset < 1:
            grid.append(f'<line x1="{offset * CHART_W:.1f}" x2="{offset * CHART_W:.1f}" y1="0" y2="{CHART_H}"/>')
        centre = ((tick - timedelta(hours=12)) - start) / WINDOW
        if 0.03 < centre < 0.97:
            labels.append(f'<span style="left:{centre * 100:.2f}%">{tick - timedelta(days=1):%a %d<em> %b</em>}</span>')
    empty = "" if runs else '<p class="empty">No runs in the last 7 days yet.</p>'
    legend = " ".join(
        f'<span class="key"><i class="swatch s-{s}"></i>{s} {counts.get(s, 0):,}</span>'
        for s in ("success", "warning", "failed", "skipped")
        if counts.get(s) or s != "skipped" or runs
    )
    return f"""<section class="card">
  <div class="card-head"><h2>Runs, last 7 days</h2><p class="legend">{legend}</p></div>
  <p class="muted">One bar per run ({len(runs):,}), as tall as the records it sent (tallest {top if runs else 0:,});
  skipped runs are the short grey ticks. A bar opens the run.</p>
  <div class="chart">
    <span class="ymax">{top if runs else 0:,}</span>
    <svg id="runs-chart" viewBox="0 0 {CHART_W:.0f} {CHART_H:.0f}" preserveAspectRatio="none" role="img"
         aria-label="{len(runs)} runs in the last 7 days">
      <g class="grid">{"".join(grid)}<line x1="0" x2="{CHART_W:.0f}" y1="{CHART_H}" y2="{CHART_H}"/></g>
      {"".join(marks)}
    </svg>
    {empty}
    <div class="xlabels">{"".join(labels)}</div>
  </div>
</section>"""


def _days(view: DashboardView) -> str:
    rows = []
    for day in report_days(view.runs):
        matched, unmatched = day.matched_records or 0, day.unmatched_records or 0
        share = matched / (matched + unmatched) if matched + unmatched else 0
        rows.append(f"""<tr><td>{_e(day.report_date)}</td><td class="num">{_n(day.sent_records)}</td>
  <td class="num">{_n(day.matched_records)}</td><td class="num">{_n(day.unmatched_records)}</td>
  <td class="share"><span class="bar"><i style="width:{share * 100:.1f}%"></i></span></td>
  <td class="num">{day.runs:,}</td></tr>""")
    table = (
        f"""<div class="table-wrap"><table><thead><tr><th>Report day</th><th class="num">Sent</th><th class="num">Matched</th>
  <th class="num">Unmatched</th><th class="share">Matched share</th><th class="num">Runs</th></tr></thead>
  <tbody>{"".join(rows)}</tbody></table></div>"""
        if rows
        else '<p class="empty">No report day sent yet.</p>'
    )
    return f"""<section class="card" id="report-days"><h2>Records per report day</h2>
  <p class="muted">What LE holds: the latest send of each day it answered.</p>{table}</section>"""


def _codes(view: DashboardView) -> str:
    codes = unmatched_codes(view.runs)
    rows = "".join(
        f'<tr><td><code>{_e(code)}</code></td><td>{_e(REASONS.get(reason, reason))}</td><td class="num">{count:,}</td></tr>'
        for code, reason, count in codes
    )
    table = (
        f"""<div class="table-wrap"><table><thead><tr><th>Campaign code</th><th>Why</th><th class="num">Runs</th></tr></thead>
  <tbody>{rows}</tbody></table></div>"""
        if rows
        else '<p class="empty">No unmatched codes in the last 7 days.</p>'
    )
    return f"""<section class="card" id="unmatched"><h2>Unmatched codes</h2>
  <p class="muted">Most frequent in the last 7 days, by the runs that reported them (each run keeps up to 20 per reason).</p>
  {table}</section>"""


def _problems(view: DashboardView) -> str:
    troubled = [r for r in reversed(view.runs) if r.status in ("failed", "warning")][:PROBLEMS_SHOWN]
    items = "".join(
        f"""<li><a class="run-link" href="{_link(view, "/runs/" + quote(r.run_id, safe=""))}">{_badge(r.status)}
  <span class="when">{_e(_local(_when(r), view.tz))}</span> <span class="muted">{_e(r.trigger)}</span></a>
  <p class="error">{_e(r.error or "no error recorded")}</p></li>"""
        for r in troubled
    )
    body = (
        f'<ul class="problems">{items}</ul>'
        if items
        else '<p class="empty">No failed or warning runs in the last 7 days.</p>'
    )
    return f'<section class="card" id="problems"><h2>Latest failed and warning runs</h2>{body}</section>'


def _footer(view: DashboardView) -> str:
    today = view.now.astimezone(view.tz).date()
    logs = " · ".join(
        f'<a href="{_link(view, "/logs/download", date=d.isoformat())}">log of {label} ({d.isoformat()})</a>'
        for label, d in (("today", today), ("yesterday", today - timedelta(days=1)))
    )
    return f"""<footer>
  <p>{logs}</p>
  <p><a href="{_link(view, "/status")}">/status</a> · <a href="{_link(view, "/runs")}">/runs</a> ·
  <a href="/health">/health</a> · <a href="/docs">/docs</a></p>
  <p class="muted">Rendered {_e(_local(view.now, view.tz))}; reloads every minute.</p>
</footer>"""


STYLE = """
:root{--bg:#f6f7f9;--card:#fff;--fg:#1f2328;--muted:#59636e;--line:#d8dee4;--accent:#2563eb;
--ok:#1a7f37;--warn:#b08800;--bad:#cf222e;--skip:#8c959f;--run:#0969da;--grid:#eaeef2}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;
--accent:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--skip:#6e7681;--run:#58a6ff;--grid:#21262d}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 16px 32px}
a{color:var(--accent)}
h1{font-size:1.6rem;margin:0}h2{font-size:1.05rem;margin:0 0 4px}h3{font-size:.8rem;margin:0 0 6px;color:var(--muted);
text-transform:uppercase;letter-spacing:.04em;font-weight:600}
p{margin:4px 0}.muted,.sub{color:var(--muted);font-size:.87rem}
code{font:.85rem ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
header{display:flex;justify-content:space-between;align-items:center;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.health{display:inline-flex;align-items:center;gap:8px;padding:6px 14px;border-radius:999px;font-weight:600;
text-transform:capitalize;border:1px solid var(--line);background:var(--card)}
.health .dot{width:10px;height:10px;border-radius:50%;background:var(--skip)}
.h-healthy .dot{background:var(--ok)}.h-degraded .dot{background:var(--warn)}.h-unhealthy .dot{background:var(--bad)}
.reason{background:var(--card);border-left:4px solid var(--warn);padding:8px 12px;border-radius:6px;margin:0 0 12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:12px}
.tile,.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.tile.wide{grid-column:1/-1}
.big{font-size:1.5rem;font-weight:650;margin:0 0 2px}.big.small{font-size:1.05rem}
.card{margin-bottom:12px}.card-head{display:flex;justify-content:space-between;align-items:baseline;gap:8px;flex-wrap:wrap}
.columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:12px}
.columns .card{margin-bottom:0}.columns{margin-bottom:12px}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:.8rem;font-weight:600;color:#fff;
background:var(--skip);vertical-align:middle}
.badge.s-success{background:var(--ok)}.badge.s-warning{background:var(--warn)}.badge.s-failed{background:var(--bad)}
.badge.s-running,.badge.s-queued{background:var(--run)}
.chart{position:relative;margin-top:10px;padding-left:0}
.chart svg{display:block;width:100%;height:200px;overflow:visible}
.grid line{stroke:var(--grid);stroke-width:1;vector-effect:non-scaling-stroke}
rect.run{fill:var(--skip)}rect.run:hover{opacity:.7}
rect.s-success{fill:var(--ok)}rect.s-warning{fill:var(--warn)}rect.s-failed{fill:var(--bad)}
rect.s-skipped{fill:var(--skip);opacity:.45}rect.s-running,rect.s-queued{fill:var(--run)}
.ymax{position:absolute;top:-2px;left:4px;font-size:.75rem;color:var(--muted)}
.xlabels{position:relative;height:22px;font-size:.78rem;color:var(--muted)}
.xlabels span{position:absolute;transform:translateX(-50%);white-space:nowrap;top:4px}.xlabels em{font-style:normal}
.empty{color:var(--muted);font-style:italic}
.chart .empty{position:absolute;top:80px;width:100%;text-align:center}
.legend{display:flex;gap:12px;flex-wrap:wrap;font-size:.85rem;color:var(--muted);margin:0}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;background:var(--skip)}
.swatch.s-success{background:var(--ok)}.swatch.s-warning{background:var(--warn)}.swatch.s-failed{background:var(--bad)}
.swatch.s-skipped{opacity:.45}
table{width:100%;border-collapse:collapse;margin-top:8px;font-size:.9rem}
th,td{text-align:left;padding:6px 6px;border-bottom:1px solid var(--line)}td:first-child{white-space:nowrap}
.table-wrap{overflow-x:auto}
th{font-size:.78rem;color:var(--muted);font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.share{min-width:80px}.bar{display:block;height:8px;border-radius:4px;background:var(--grid);overflow:hidden}
.bar i{display:block;height:100%;background:var(--ok)}
.problems{list-style:none;margin:8px 0 0;padding:0}
.problems li{padding:8px 0;border-bottom:1px solid var(--line)}
.problems li:last-child{border-bottom:0}
.problems .error{margin:3px 0 0;font-size:.9rem;overflow-wrap:anywhere}
.run-link{text-decoration:none;color:var(--fg)}.run-link:hover .when{text-decoration:underline}
.error-text{color:var(--bad);overflow-wrap:anywhere}.tile.error-text{color:var(--fg)}
.tile.error-text p{color:var(--bad)}
.problem p{color:var(--bad)}
footer{margin-top:16px;color:var(--muted);font-size:.87rem}
@media (max-width:600px){main{padding:12px 10px}.chart svg{height:160px}.big{font-size:1.25rem}
th,td{padding:5px 3px}.columns{grid-template-columns:1fr}.share,.xlabels em{display:none}}
"""
