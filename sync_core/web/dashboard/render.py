"""The dashboard's HTML: every value from state or the request escaped, every link carrying the request's key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache, lru_cache
from html import escape
from importlib.resources import files
from urllib.parse import quote, quote_plus, urlencode

from sync_core import SERVICE_NAME, __version__
from sync_core.state.records import RunRecord
from sync_core.web.api_models import DEFAULT_RUNS_LIMIT, MAX_RUNS_LIMIT
from sync_core.web.dashboard.figures import (
    CODES_PER_REASON,
    HOURS,
    STACK_ORDER,
    HourColumn,
    hour_columns,
    latest,
    report_days,
    run_time,
    schedule_in_words,
    unmatched_by_reason,
)
from sync_core.web.dashboard.state import DashboardView

PROBLEMS_SHOWN = 10
REFRESH_S = 60  # the page reloads itself (a meta refresh: no script), so it fills up as runs happen
CHART_W, CHART_H = 1008.0, 200.0  # 6 units per hour; style.css gives each column 5 and the full height 200
MIN_SEGMENT = 8.0  # the smallest stacked segment, so one failed run among many stays visible and clickable
LOG_LINE_SHOWN = 400  # characters of a log line on the page; the download has it whole
REASONS = {"invalid_format": "invalid format", "unknown_domain": "unknown domain"}
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' "
    "height='16' rx='3' fill='%232563eb'/%3E%3Cpath d='M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z' fill='white'/%3E%3C/svg%3E"
)


@cache
def style() -> str:
    return files(__package__).joinpath("style.css").read_text(encoding="utf-8")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _link(view: DashboardView, path: str, **query: str) -> str:
    """A same-origin link carrying the key the page was opened with (HTML-escaped, ready for an attribute)."""
    if view.key:
        query["code"] = view.key
    return _e(path + ("?" + urlencode(query) if query else ""))


def _run_link(view: DashboardView, run: RunRecord) -> str:
    return _link(view, "/runs/" + quote(run.run_id, safe=""))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return f'<span class="badge s-{_e(status)}">{_e(status)}</span>'


def render(view: DashboardView) -> str:
    """The whole page."""
    sections = [_header(view)]
    if view.problem:
        sections.append(f'<section class="card problem"><h2>State unavailable</h2><p>{_e(view.problem)}</p></section>')
    else:
        sections += [
            _headline(view),
            _chart(view),
            f'<div class="columns">{_days(view)}{_codes(view)}</div>',
            _problems(view),
            _logs(view),
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
<style>{style()}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


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


def _run_tile(view: DashboardView, run: RunRecord | None, title: str, tile_id: str, none: str) -> str:
    if run is None:
        return f'<div class="tile" id="{tile_id}"><h3>{title}</h3><p class="big small">none</p><p class="muted">{none}</p></div>'
    when = run.finished_at or run_time(run)
    days = ", ".join(run.report_dates) or "today"
    dry = " · dry run" if run.dry_run else ""
    return f"""<div class="tile" id="{tile_id}"><h3>{title}</h3>
  <p class="big"><a class="run-link" href="{_run_link(view, run)}">{_badge(run.status)}</a></p>
  <p>{_e(_local(when, view.tz))}</p><p class="muted">{_e(_ago(view.now - when))} · took {_e(_duration(run.duration_ms))}</p>
  <p class="muted">{_n(run.sent_records)} sent · {_n(run.matched_records)} matched · {_n(run.unmatched_records)} unmatched</p>
  <p class="muted">report days {_e(days)}{dry} · {_e(run.trigger)}</p></div>"""


def _headline(view: DashboardView) -> str:
    status = view.status
    assert status is not None
    timer = latest(view.runs, "timer", done_only=True)
    manual = latest(view.runs, "manual", "cli")
    tiles = [
        _run_tile(view, timer, "Last timer run", "last-timer-run", "no finished timer run in the last 7 days"),
        _run_tile(view, manual, "Last manual run", "last-manual-run", "none in the last 7 days (POST /trigger)"),
    ]
    scheduler = status.scheduler
    next_run = scheduler.next_run_at
    when = f'<p class="muted">{_e(_ago(view.now - next_run))}</p>' if next_run else ""
    words = schedule_in_words(scheduler.schedule)
    tiles.append(f"""<div class="tile" id="next-run"><h3>Next timer run</h3>
  <p class="big small">{_e(scheduler.next_run or "timer disabled")}</p>{when}
  <p class="muted"><code>{_e(scheduler.schedule)}</code>{f" · {_e(words.lower())} (UTC)" if words else ""}</p></div>""")
    stats = status.job_statistics
    tiles.append(f"""<div class="tile"><h3>Success rate</h3><p class="big">{_e(stats.success_rate)}</p>
  <p class="muted">{_n(stats.successful_runs)} of {_n(stats.total_runs)} runs · {_n(stats.skipped_runs)} skipped</p></div>""")
    if timer is not None and timer.error:
        tiles.append(
            f'<div class="tile wide error-text"><h3>Last timer run\'s error</h3><p>{_e(timer.error)}</p></div>'
        )
    return f'<section class="tiles">{"".join(tiles)}</section>'


def _hour_link(view: DashboardView, since: str, until: str, count: int, status: str = "") -> str:
    """A column's or a part's link, short (a week has hundreds): times in ISO 8601's basic form, no `limit` while
    the hour fits GET /runs' default, and `&` left bare, which HTML allows here: every value is percent-encoded,
    so no name after an `&` can read as a character reference. The same query `urlencode` makes, each value encoded
    once a process rather than once a link (a week's links took a third of the page's time)."""
    link = f"/runs?since={_plus(since)}&until={_plus(until)}"
    if status:
        link += f"&status={_plus(status)}"
    if count > DEFAULT_RUNS_LIMIT:
        link += f"&limit={MAX_RUNS_LIMIT}"
    if view.key:
        link += f"&code={_plus(view.key)}"
    return link


@lru_cache(maxsize=1024)  # a week's hours, the statuses, the key
def _plus(value: str) -> str:
    return quote_plus(value)


def _column(view: DashboardView, column: HourColumn, x: float, scale: float) -> str:
    """An hour: a full-height link to its runs, and on it one linked segment per status, stacked; one tooltip for
    the group (the column's width and the hour's height are in the style sheet)."""
    since, since_q, until_q = _utc(column.start), _basic(column.start), _basic(column.end)
    label = f"{_local(column.start, view.tz, '%a %d %b %H:%M')}"
    by_status = ", ".join(f"{column.counts[s]} {s}" for s in STACK_ORDER if column.counts.get(s))
    parts = [
        f'<g data-since="{since}"><title>{_e(label)}: {column.total} run(s) ({_e(by_status)})</title>'
        f'<a href="{_hour_link(view, since_q, until_q, column.total)}">'
        f'<rect class="hour" data-count="{column.total}" x="{x:.1f}"/></a>'
    ]
    y = CHART_H
    for status in STACK_ORDER:
        count = column.counts.get(status, 0)
        if not count:
            continue
        height = max(count * scale, MIN_SEGMENT)
        y -= height
        parts.append(
            f'<a href="{_hour_link(view, since_q, until_q, count, status)}">'
            f'<rect class="seg s-{_e(status)}" data-count="{count}" x="{x:.1f}" y="{y:.1f}" height="{height:.1f}"/></a>'
        )
    return "".join(parts) + "</g>"


def _basic(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def _chart(view: DashboardView) -> str:
    start = view.start
    columns = hour_columns(view.runs, start)
    counts = {s: sum(c.counts.get(s, 0) for c in columns) for s in STACK_ORDER}
    runs = sum(counts.values())
    busiest = max((c.total for c in columns), default=0)
    step = CHART_W / HOURS
    # Room for every segment at its minimum height, so the stack never grows past the top.
    scale = (CHART_H - MIN_SEGMENT * len(STACK_ORDER)) / busiest if busiest else 0.0
    marks = [_column(view, c, i * step + 0.5, scale) for i, c in enumerate(columns) if c.total]
    grid, labels = [], []
    for i, column in enumerate(columns):
        local = column.start.astimezone(view.tz)
        if local.hour == 0:
            grid.append(f'<line x1="{i * step:.1f}" x2="{i * step:.1f}" y1="0" y2="{CHART_H:.0f}"/>')
        if local.hour == 12 and 1 < i < HOURS - 2:
            labels.append(
                f'<span style="left:{(i + 0.5) / HOURS * 100:.2f}%"><b>{local:%a} </b>{local:%d}<em> {local:%b}</em></span>'
            )
    empty = "" if runs else '<p class="empty">No runs in the last 7 days yet.</p>'
    legend = " ".join(
        f'<span class="key"><i class="swatch s-{s}"></i>{s} {counts[s]:,}</span>'
        for s in STACK_ORDER
        if counts[s] or s in ("success", "warning", "failed")
    )
    return f"""<section class="card" id="runs">
  <div class="card-head"><h2>Runs, last 7 days</h2><p class="legend">{legend}</p></div>
  <p class="muted">One column per hour ({runs:,} runs; the busiest hour had {busiest:,}), stacked by status.
  A column opens that hour's runs; a coloured part, only the runs of that status.</p>
  <div class="chart">
    <span class="ymax">{busiest:,} runs in an hour</span>
    <svg id="runs-chart" viewBox="0 0 {CHART_W:.0f} {CHART_H:.0f}" preserveAspectRatio="none" role="img"
         aria-label="{runs} runs in the last 7 days, by hour">
      <g class="grid">{"".join(grid)}<line x1="0" x2="{CHART_W:.0f}" y1="{CHART_H:.0f}" y2="{CHART_H:.0f}"/></g>
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
        refused = "" if day.accepted else ' <span class="badge s-warning">refused</span>'
        rows.append(f"""<tr><td>{_e(day.report_date)}{refused}</td><td class="num">{_n(day.sent_records)}</td>
  <td class="num">{_n(day.matched_records)}</td><td class="num">{_n(day.unmatched_records)}</td>
  <td class="share"><span class="bar"><i style="width:{share * 100:.1f}%"></i></span></td>
  <td class="num opt">{day.runs:,}</td></tr>""")
    table = (
        f"""<div class="table-wrap"><table><thead><tr><th>Report day</th><th class="num">Sent</th><th class="num">Matched</th>
  <th class="num">Unmatched</th><th class="share">Matched share</th><th class="num opt">Answers</th></tr></thead>
  <tbody>{"".join(rows)}</tbody></table></div>"""
        if rows
        else '<p class="empty">LE has answered for no report day in the last 7 days.</p>'
    )
    return f"""<section class="card" id="report-days"><h2>Records per report day</h2>
  <p class="muted">Only days LE answered for: its latest answer's figures, and how many runs it answered.</p>{table}</section>"""


def _codes(view: DashboardView) -> str:
    blocks = []
    for figures in unmatched_by_reason(view.runs):
        shown = figures.codes[:CODES_PER_REASON]
        more = len(figures.codes) - len(shown)
        codes = "".join(f"<li><code>{_e(code)}</code>{_count(count)}</li>" for code, count in shown)
        if figures.counted:
            kept = "its most frequent codes, with their records" + (f"; {more:,} more kept" if more else "")
        else:
            kept = f"{len(figures.codes):,} kept as examples" + (f", {more:,} more in the run" if more else "")
        blocks.append(f"""<div class="reason-block" data-reason="{_e(figures.reason)}">
  <h3><span class="total">{figures.records:,}</span> {_e(REASONS.get(figures.reason, figures.reason))}</h3>
  <p class="muted">records in the <a href="{_run_link(view, figures.run)}">latest run that met it</a>
  ({_e(_local(run_time(figures.run), view.tz, "%a %d %b %H:%M"))}; {kept}); met by {figures.runs_in_window:,} runs in 7 days</p>
  <ul class="codes">{codes}</ul></div>""")
    body = "".join(blocks) or '<p class="empty">No unmatched codes in the last 7 days.</p>'
    return f"""<section class="card" id="unmatched"><h2>Unmatched codes, by reason</h2>
  <p class="muted">LE is still sent these records; fix the source's code or add its domain code to SYNC_DOMAIN_CODES.</p>
  {body}</section>"""


def _count(records: int | None) -> str:
    return "" if records is None else f' <span class="count">{records:,}</span>'


def _problems(view: DashboardView) -> str:
    troubled = [r for r in reversed(view.runs) if r.status in ("failed", "warning")][:PROBLEMS_SHOWN]
    items = "".join(
        f"""<li><a class="run-link" href="{_run_link(view, r)}">{_badge(r.status)}
  <span class="when">{_e(_local(run_time(r), view.tz))}</span> <span class="muted">{_e(r.trigger)}</span></a>
  <p class="error">{_e(r.error or "no error recorded")}</p></li>"""
        for r in troubled
    )
    body = (
        f'<ul class="problems">{items}</ul>'
        if items
        else '<p class="empty">No failed or warning runs in the last 7 days.</p>'
    )
    return f'<section class="card" id="problems"><h2>Latest failed and warning runs</h2>{body}</section>'


def _logs(view: DashboardView) -> str:
    blocks = []
    for label, day_log in zip(("Today", "Yesterday"), view.logs, strict=False):
        day = day_log.day.isoformat()
        lines = "\n".join(_e(line[:LOG_LINE_SHOWN]) for line in day_log.lines)
        body = f"<pre>{lines}</pre>" if day_log.lines else f'<p class="empty">No log for {_e(day)}.</p>'
        blocks.append(f"""<div class="log" data-day="{_e(day)}"><h3>{label} ({_e(day)}): the last lines</h3>{body}
  <p class="muted"><a href="{_link(view, "/logs", date=day, lines="200")}">more lines</a> ·
  <a href="{_link(view, "/logs/download", date=day)}">the whole log</a></p></div>""")
    return f'<section class="card" id="logs"><h2>Logs</h2>{"".join(blocks)}</section>'


def _footer(view: DashboardView) -> str:
    return f"""<footer>
  <p><a href="{_link(view, "/status")}">/status</a> · <a href="{_link(view, "/runs")}">/runs</a> ·
  <a href="/health">/health</a> · <a href="/docs">/docs</a></p>
  <p class="muted">Rendered {_e(_local(view.now, view.tz))}; reloads every minute.</p>
</footer>"""
