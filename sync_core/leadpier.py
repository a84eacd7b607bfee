"""The LeadPier client: login and session reuse, every page of a day's source statistics, re-login on 401/403."""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

import requests
from pydantic import BaseModel, ConfigDict, ValidationError

from . import telemetry
from .errors import ConcurrentUpdate, LoginError, UpstreamError
from .http import Caller
from .records import LeadPierSession, utcnow

log = logging.getLogger(__name__)

LOGIN_PATH = "/v1/frontend/authenticate"
STATS_PATH = "/v1/api/stats/user/org/sources"
EXPIRY_MARGIN = timedelta(minutes=5)
MAX_RELOGINS = 2  # per call, as the old service allowed


class SessionStore(Protocol):
    def load_session(self) -> tuple[LeadPierSession | None, str | None]: ...
    def save_session(self, session: LeadPierSession, etag: str | None) -> str | None: ...


class _LoginData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str
    email: str | None = None
    firstName: str | None = None
    lastName: str | None = None


class _LoginAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    errorCode: str
    data: _LoginData | None = None


class StatsPage(BaseModel):
    """One page of statistics; rows stay raw so the transform can count each unreadable row on its own."""

    model_config = ConfigDict(extra="ignore")
    count: int
    statistics: list[Any]


class _StatsAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    errorCode: str
    data: StatsPage | None = None


def token_expiry(token: str) -> datetime | None:
    """The JWT's own expiry (`exp`, or `expires`), read without verifying: we only decide when to log in again."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        value = claims.get("exp", claims.get("expires"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Some issuers write milliseconds; no token lives until the year 33658.
            seconds = value / 1000 if value > 1e12 else value
            return datetime.fromtimestamp(seconds, timezone.utc)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (IndexError, ValueError, TypeError, AttributeError, OverflowError, OSError):
        return None
    return None


def session_is_usable(session: LeadPierSession | None, now: datetime) -> bool:
    return session is not None and bool(session.token) and now < session.expires_at - EXPIRY_MARGIN


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
        token_ttl: timedelta,
        caller: Caller,
        sessions: SessionStore,
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._page_size = page_size
        self._concurrency = concurrency
        self._token_ttl = token_ttl
        self._caller = caller
        self._sessions = sessions
        self._thread_init = thread_init
        self._headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "origin": "https://dash.leadpier.com",
            "referer": "https://dash.leadpier.com/",
            "user-agent": user_agent,
        }
        self._token: str | None = None
        self._session_etag: str | None = None
        self._token_lock = threading.Lock()
        self.logins = 0

    # -- session -----------------------------------------------------------------------------

    def ensure_token(self) -> str:
        """The stored token while it is valid (minus a margin), else a fresh login saved to source.json."""
        with self._token_lock:
            if self._token:
                return self._token
            session, self._session_etag = self._sessions.load_session()
            if session_is_usable(session, utcnow()):
                log.info("Reusing the stored LeadPier token (valid until %s)", session.expires_at.isoformat())
                self._token = session.token
                return self._token
            return self._login()

    def _relogin(self, rejected: str) -> str:
        with self._token_lock:
            if self._token and self._token != rejected:
                return self._token  # another page's thread already logged in again
            return self._login()

    def _login(self) -> str:
        with telemetry.span(telemetry.LOGIN_SPAN) as login_span:
            try:
                return self._login_once()
            except Exception as exc:
                login_span.fail(str(exc))
                raise

    def _login_once(self) -> str:
        log.info("Logging in to LeadPier as %s", self._username)
        try:
            response = self._caller.request(
                "POST",
                self._base + LOGIN_PATH,
                what="LeadPier login",
                json={"username": self._username, "password": self._password},
                headers=self._headers,
            )
        except UpstreamError as exc:
            raise LoginError(str(exc)) from None
        if not response.ok:
            raise LoginError(f"LeadPier login failed: HTTP {response.status_code}")
        answer = _parse(response, _LoginAnswer, "LeadPier login")
        if answer.errorCode != "NO_ERROR" or answer.data is None:
            raise LoginError(f"LeadPier login failed: {answer.errorCode[:80]}")
        now = utcnow()
        token = answer.data.token
        name = " ".join(p for p in (answer.data.firstName, answer.data.lastName) if p) or None
        session = LeadPierSession(
            token=token,
            last_login_time=now,
            expires_at=token_expiry(token) or now + self._token_ttl,
            user_email=answer.data.email,
            user_name=name,
        )
        self.logins += 1
        log.info("Logged in to LeadPier; token valid until %s", session.expires_at.isoformat())
        self._token = self._store_session(session)
        return self._token

    def _store_session(self, session: LeadPierSession) -> str:
        """Save conditionally on the ETag read; if another process logged in meanwhile, keep the newer token."""
        for _ in range(3):
            try:
                self._session_etag = self._sessions.save_session(session, self._session_etag)
                return session.token
            except ConcurrentUpdate:
                theirs, self._session_etag = self._sessions.load_session()
                if session_is_usable(theirs, utcnow()) and theirs.last_login_time > session.last_login_time:
                    return theirs.token
        raise ConcurrentUpdate("source.json kept changing while the new LeadPier session was saved")

    # -- statistics ----------------------------------------------------------------------------

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
        with telemetry.span(telemetry.PAGE_SPAN, {telemetry.REPORT_DATE: day.isoformat(),
                                                  telemetry.PAGE_OFFSET: offset}) as page_span:
            try:
                page = self._fetch_page(body, what)
            except Exception as exc:
                page_span.fail(str(exc))
                raise
            page_span.set(telemetry.PAGE_ROWS, len(page.statistics))
            return page

    def _fetch_page(self, body: dict[str, Any], what: str) -> StatsPage:
        token = self.ensure_token()
        for relogins in range(MAX_RELOGINS + 1):
            response = self._caller.request(
                "POST",
                self._base + STATS_PATH,
                what=what,
                json=body,
                headers={**self._headers, "authorization": f"bearer {token}"},
            )
            if response.status_code in (401, 403) and relogins < MAX_RELOGINS:
                log.warning("%s: HTTP %d, the token was refused; logging in again", what, response.status_code)
                token = self._relogin(rejected=token)
                continue
            if not response.ok:
                raise UpstreamError(f"{what} failed: HTTP {response.status_code}")
            answer = _parse(response, _StatsAnswer, what)
            if answer.errorCode != "NO_ERROR" or answer.data is None:
                raise UpstreamError(f"{what} failed: LeadPier answered {answer.errorCode[:80]}")
            return answer.data
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_day(self, day: date) -> list[Any]:
        """Every row of the day: page 1 tells the count, the other pages are fetched concurrently."""
        return [row for page in self.iter_pages(day) for row in page]

    def iter_pages(self, day: date) -> Iterator[list[Any]]:
        """The day's pages in order, each as soon as it has arrived, so the caller works on one page while
        the later ones are still being fetched (concurrently, after page 1, which tells the count)."""
        first = self._stats_page(day, 0)
        read = len(first.statistics)
        yield first.statistics
        if read < self._page_size or first.count <= read:
            self._checked(day, read, first.count)
            return
        offsets = range(self._page_size, first.count, self._page_size)
        with ThreadPoolExecutor(
            max_workers=min(self._concurrency, len(offsets)),
            thread_name_prefix="leadpier-page",
            initializer=self._thread_init,
        ) as pool:
            # Each page runs in a copy of this context, so its log lines stay with this run.
            futures = deque(pool.submit(contextvars.copy_context().run, self._stats_page, day, o) for o in offsets)
            try:
                while futures:
                    # popleft: a page's rows are freed once the caller is done with them, not at the day's end.
                    page = futures.popleft().result().statistics
                    read += len(page)
                    yield page
            except BaseException:
                for future in futures:
                    future.cancel()  # the day has failed (or the caller stopped reading): start no further page
                raise
        self._checked(day, read, first.count)

    def _checked(self, day: date, read: int, count: int) -> None:
        if read != count:
            # The day's figures moved between pages; the next run (10 minutes on) reads them again.
            log.warning("LeadPier reported %d rows for %s but %d were read", count, day.isoformat(), read)
        log.info("Fetched %d rows for %s", read, day.isoformat())


def _parse(response: requests.Response, model: type[BaseModel], what: str) -> Any:
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise UpstreamError(f"{what} failed: the answer (HTTP {response.status_code}) was not the expected JSON") from None
