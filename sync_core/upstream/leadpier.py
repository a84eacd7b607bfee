"""The LeadPier client: every page of a day's source statistics, with the session from LeadPierAuth renewed on 401/403."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from sync_core import telemetry
from sync_core.errors import AuthExpired, RequestNotSent, UpstreamRefused
from sync_core.untrusted import one_line
from sync_core.upstream.http import Caller
from sync_core.upstream.leadpier_auth import LeadPierAuth, SessionStore

log = logging.getLogger("sync_core.leadpier")  # the name every log line shows: kept when the module moved

STATS_PATH = "/v1/api/stats/user/org/sources"
MAX_RELOGINS = 2  # per call, as the old service allowed


class StatsPage(BaseModel):
    """One page of statistics; rows stay raw so the transform can count each unreadable row on its own."""

    model_config = ConfigDict(extra="ignore")
    count: int
    statistics: list[Any]


class _StatsAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    errorCode: str
    data: StatsPage | None = None


class LeadPierClient:
    """Talks to LeadPier for one run; thread-safe for concurrent page fetches."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        user_agent: str,
        page_size: int,
        concurrency: int,
        max_rows_per_day: int = 200_000,
        token_ttl: timedelta,
        caller: Caller,
        sessions: SessionStore,
    ) -> None:
        self._page_size = page_size
        self._concurrency = concurrency
        self._max_rows = max_rows_per_day
        self._caller = caller
        self._headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "origin": "https://dash.leadpier.com",
            "referer": "https://dash.leadpier.com/",
            "user-agent": user_agent,
        }
        self._stats_url = base_url.rstrip("/") + STATS_PATH
        self._auth = LeadPierAuth(
            base_url=base_url, username=username, password=password, headers=self._headers,
            token_ttl=token_ttl, caller=caller, sessions=sessions,
        )  # fmt: skip

    @property
    def logins(self) -> int:
        """Logins made by this client (re-logins included)."""
        return self._auth.logins

    def _stats_page(self, day: date, offset: int) -> StatsPage:
        body = {
            "limit": self._page_size,
            "offset": offset,
            "orderBy": "source",
            "orderDirection": "DESC",
            "periodFrom": day.isoformat(),
            "periodTo": day.isoformat(),
        }
        what = f"LeadPier statistics for {day.isoformat()} (offset {offset})"
        with telemetry.span(
            telemetry.PAGE_SPAN, {telemetry.REPORT_DATE: day.isoformat(), telemetry.PAGE_OFFSET: offset}
        ) as page_span:
            try:
                page = self._fetch_page(body, what)
            except Exception as exc:
                page_span.fail(str(exc))
                raise
            page_span.set(telemetry.PAGE_ROWS, len(page.statistics))
            return page

    def _fetch_page(self, body: dict[str, Any], what: str) -> StatsPage:
        authorization = self._auth.authorization()
        for _ in range(MAX_RELOGINS):
            try:
                return self._stats_answer(body, what, authorization)
            except AuthExpired as refused:
                log.warning("%s: HTTP %s, the token was refused; logging in again", what, refused.status)
                authorization = self._auth.refused(authorization)
            except RequestNotSent:
                # A stored token the HTTP stack will not carry would fail every run alike: drop it, log in again.
                log.warning("%s: the request could not be sent with the stored token; logging in again", what)
                authorization = self._auth.refused(authorization)
        return self._stats_answer(body, what, authorization)  # a refusal now is the call's failure

    def _stats_answer(self, body: dict[str, Any], what: str, authorization: str) -> StatsPage:
        answer = self._caller.call(
            "POST",
            self._stats_url,
            what=what,
            answer=_StatsAnswer,
            json=body,
            headers={**self._headers, "authorization": authorization},
        )
        if answer.errorCode != "NO_ERROR" or answer.data is None:
            raise UpstreamRefused(f"{what} failed: LeadPier answered {one_line(answer.errorCode, 80)}")
        return answer.data

    def iter_pages(self, day: date) -> Iterator[list[Any]]:
        """The day's pages in order, each as soon as it has arrived, so the caller works on one page while
        the later ones are still being fetched (concurrently, after page 1, which tells the count).

        The count LeadPier claims only says where to stop: no more pages are on the wire than the concurrency
        allows, a short (or empty) page is the last, and past LEADPIER_MAX_ROWS_PER_DAY rows the day fails.
        """
        first = self._stats_page(day, 0)
        page, count = first.statistics, first.count
        del first
        read = len(page)
        self._within_ceiling(day, read, count)
        if read < self._page_size or count <= read:
            yield page
            self._checked(day, read, count)
            return
        # One page past the ceiling is asked for, so a day of exactly the ceiling's rows is not taken for more.
        offsets = iter(range(self._page_size, min(count, self._max_rows + 1), self._page_size))
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="leadpier-page") as pool:
            ahead = _PagesAhead(pool, lambda offset: self._stats_page(day, offset).statistics, offsets,
                                self._page_size, self._concurrency)  # fmt: skip
            try:
                ahead.fill()  # the next pages are on the wire before the caller gets to work on page 1
                yield page
                for page in iter(ahead.next, None):
                    read += len(page)
                    self._within_ceiling(day, read, count)
                    yield page
                    if len(page) < self._page_size:
                        break  # the last page, whatever the count said
            finally:
                ahead.stop()  # done, failed, or the caller stopped reading: start no further page
        self._checked(day, read, count)

    def _within_ceiling(self, day: date, read: int, count: int) -> None:
        if read > self._max_rows:
            raise UpstreamRefused(
                f"LeadPier statistics for {day.isoformat()}: more than {self._max_rows} rows arrived "
                f"(LEADPIER_MAX_ROWS_PER_DAY; LeadPier claimed {count}); nothing of the day was sent"
            )

    def _checked(self, day: date, read: int, count: int) -> None:
        if read != count:
            # The day's figures moved between pages, or the count was wrong; the next run (10 minutes on) reads
            # them again.
            log.warning("LeadPier reported %d rows for %s but %d were read", count, day.isoformat(), read)
        log.info("Fetched %d rows for %s", read, day.isoformat())


class _PagesAhead:
    """The pages after page 1, in order. Each fetch that brings a full page starts the next one from its own thread,
    so the network does not wait for the caller: at most `concurrency` pages are on the wire, and at most as many
    more wait, fetched, for the caller to take them."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        fetch: Callable[[int], list[Any]],
        offsets: Iterator[int],
        page_size: int,
        concurrency: int,
    ) -> None:
        self._pool, self._fetch, self._offsets = pool, fetch, offsets
        self._page_size, self._concurrency = page_size, concurrency
        self._lock = threading.Lock()
        self._futures: deque[Future[list[Any]]] = deque()  # in the order of their offsets
        self._on_the_wire = 0
        self._stopped = False

    def fill(self) -> None:
        with self._lock:
            while (
                not self._stopped
                and self._on_the_wire < self._concurrency
                and len(self._futures) < 2 * self._concurrency
            ):
                offset = next(self._offsets, None)
                if offset is None:
                    self._stopped = True
                    return
                self._on_the_wire += 1
                # Each page runs in a copy of this context, so its log lines, its span and the host's invocation id
                # stay with this run (a page thread starting the next page passes on its own copy of it).
                self._futures.append(self._pool.submit(contextvars.copy_context().run, self._one, offset))

    def _one(self, offset: int) -> list[Any]:
        try:
            rows = self._fetch(offset)
        except BaseException:
            with self._lock:
                self._on_the_wire -= 1
                self._stopped = True  # the caller fails the day on this page: no page after it is needed
            raise
        with self._lock:
            self._on_the_wire -= 1
            if len(rows) < self._page_size:
                self._stopped = True  # the last page: none after it is asked for
        self.fill()
        return rows

    def next(self) -> list[Any] | None:
        """The next page in order (its error raised), or None when no more were asked for."""
        with self._lock:
            if not self._futures:
                return None
            future = self._futures.popleft()  # a page is freed once the caller is done with it
        page = future.result()
        self.fill()
        return page

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for future in self._futures:
                future.cancel()
