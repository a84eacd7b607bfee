"""GET /dashboard: one server-rendered HTML page over the state behind /health, /status and /runs."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

from sync_core.web.dashboard.figures import report_days, unmatched_by_reason
from sync_core.web.dashboard.render import PROBLEMS_SHOWN, render
from sync_core.web.dashboard.state import DashboardView, DayLog, RunCache, collect
from sync_core.web.responses import ApiResponse

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PROBLEMS_SHOWN",
    "DashboardView",
    "DayLog",
    "RunCache",
    "collect",
    "dashboard_page",
    "render",
    "report_days",
    "unmatched_by_reason",
]

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


def dashboard_page(params: Mapping[str, str], *, accept_encoding: str = "", **options: Any) -> ApiResponse:
    """The page; 503 (still a page) when settings or storage keep the figures from being read. Gzipped when the
    browser accepts it: the Functions host sends a response as the app made it (a week's page is about 100 KB,
    11 KB gzipped)."""
    view = collect(params, **options)
    body, headers = render(view).encode(), dict(HEADERS)
    if accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers |= {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    return ApiResponse(503 if view.problem else 200, body, HTML, headers)


def accepts_gzip(accept_encoding: str) -> bool:
    """`gzip` among the codings of an Accept-Encoding header, not refused with q=0."""
    for coding in accept_encoding.lower().split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False
