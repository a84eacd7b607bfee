"""LeadPier authentication: the login, the session stored in source.json, its expiry, and re-login when refused."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeGuard

from pydantic import BaseModel, ConfigDict

from sync_core import telemetry
from sync_core.errors import ConcurrentUpdate, LoginError, RequestNotSent, UpstreamRefused, UpstreamUnavailable
from sync_core.state.records import LeadPierSession, utcnow
from sync_core.untrusted import CODE_CHARS, one_line
from sync_core.upstream.http import Caller

log = logging.getLogger("sync_core.leadpier_auth")  # the name every log line shows: kept when the module moved

LOGIN_PATH = "/v1/frontend/authenticate"
EXPIRY_MARGIN = timedelta(minutes=5)
# However long the token says it lives: a stored session is trusted for a day at most, then the app logs in again.
SESSION_MAX_AGE = timedelta(hours=24)
# What an `authorization: bearer <token>` header can carry everywhere: visible ASCII, no spaces, a sane length.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,8192}")
SAVE_ATTEMPTS = 3  # conditional saves of source.json before giving up to a writer that keeps changing it


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


def token_expiry(token: str) -> datetime | None:
    """The JWT's own expiry (`exp`, or `expires`), read without verifying: we only decide when to log in again."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        value = claims.get("exp", claims.get("expires"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # Some issuers write milliseconds; no token lives until the year 33658.
            seconds = value / 1000 if value > 1e12 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value)  # "Z" is read as UTC since Python 3.11
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (IndexError, ValueError, TypeError, AttributeError, OverflowError, OSError):
        return None
    return None


def is_header_safe(token: str) -> bool:
    """Whether the token can be sent in a header as it is (no line break, control or non-ASCII character)."""
    return _HEADER_SAFE.fullmatch(token) is not None


def usable_until(session: LeadPierSession) -> datetime:
    """The session's expiry, capped at SESSION_MAX_AGE after its login whatever the token claims."""
    return min(session.expires_at, session.last_login_time + SESSION_MAX_AGE)


def session_is_usable(session: LeadPierSession | None, now: datetime) -> TypeGuard[LeadPierSession]:
    return session is not None and is_header_safe(session.token) and now < usable_until(session) - EXPIRY_MARGIN


class LeadPierAuth:
    """The LeadPier session of one run: hands out the authorization header, logging in only when the stored token
    is missing, near its expiry or refused; thread-safe, so pages that meet one refused token share one re-login."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        headers: Mapping[str, str],
        token_ttl: timedelta,
        caller: Caller,
        sessions: SessionStore,
    ) -> None:
        self._login_url = base_url.rstrip("/") + LOGIN_PATH
        self._username = username
        self._password = password
        self._headers = dict(headers)
        self._token_ttl = token_ttl
        self._caller = caller
        self._sessions = sessions
        self._token: str | None = None
        self._session_etag: str | None = None
        self._lock = threading.Lock()
        self.logins = 0

    def token(self) -> str:
        """The stored token while it is valid (minus a margin), else a fresh login saved to source.json."""
        with self._lock:
            if not self._token:
                self._token = self._stored_token() or self._login()
            return self._token

    def authorization(self) -> str:
        """The value of the `authorization` header for the next call."""
        return _bearer(self.token())

    def refused(self, authorization: str) -> str:
        """Told that a call was refused with `authorization`: the header to use now, after logging in again unless
        another thread has done so since."""
        with self._lock:
            if not self._token or _bearer(self._token) == authorization:
                self._token = self._login()
            return _bearer(self._token)

    def _stored_token(self) -> str | None:
        session, self._session_etag = self._sessions.load_session()
        if not session_is_usable(session, utcnow()):
            return None
        log.info("Reusing the stored LeadPier token (valid until %s)", usable_until(session).isoformat())
        return session.token

    def _login(self) -> str:
        with telemetry.span(telemetry.LOGIN_SPAN) as login_span:
            try:
                return self._store_session(self._log_in())
            except Exception as exc:
                login_span.fail(str(exc))
                raise

    def _log_in(self) -> LeadPierSession:
        log.info("Logging in to LeadPier as %s", self._username)
        try:
            answer = self._caller.call(
                "POST",
                self._login_url,
                what="LeadPier login",
                answer=_LoginAnswer,
                json={"username": self._username, "password": self._password},
                headers=self._headers,
            )
        except (UpstreamUnavailable, UpstreamRefused, RequestNotSent) as exc:
            raise LoginError(str(exc), status=exc.status) from None
        if answer.errorCode != "NO_ERROR" or answer.data is None:
            raise LoginError(f"LeadPier login failed: {one_line(answer.errorCode, 80)}")
        if not is_header_safe(answer.data.token):
            # Stored, it would fail every later run before it was even sent; its text is never repeated.
            raise LoginError(
                f"LeadPier login failed: the token it answered ({len(answer.data.token)} characters) cannot be sent "
                "in a header (only visible ASCII, at most 8192 characters); it was not stored"
            )
        session = self._session_of(answer.data)
        self.logins += 1
        log.info("Logged in to LeadPier; token valid until %s", session.expires_at.isoformat())
        return session

    def _session_of(self, data: _LoginData) -> LeadPierSession:
        now = utcnow()
        name = " ".join(part for part in (data.firstName, data.lastName) if part) or None
        claimed = token_expiry(data.token) or now + self._token_ttl
        return LeadPierSession(
            token=data.token,
            last_login_time=now,
            expires_at=min(claimed, now + SESSION_MAX_AGE),
            user_email=one_line(data.email, CODE_CHARS) if data.email else None,
            user_name=one_line(name, CODE_CHARS) if name else None,
        )

    def _store_session(self, session: LeadPierSession) -> str:
        """Save conditionally on the ETag read; if another process logged in meanwhile, keep the newer token."""
        for _ in range(SAVE_ATTEMPTS):
            try:
                self._session_etag = self._sessions.save_session(session, self._session_etag)
                return session.token
            except ConcurrentUpdate:
                theirs, self._session_etag = self._sessions.load_session()
                if session_is_usable(theirs, utcnow()) and theirs.last_login_time > session.last_login_time:
                    return theirs.token
        raise ConcurrentUpdate("source.json kept changing while the new LeadPier session was saved")


def _bearer(token: str) -> str:
    return f"bearer {token}"
