"""Upstream HTTP: one session per client, a timeout on every call, retries inside the run's deadline, answers sorted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sync_core.errors import (
    AuthExpired,
    DeadlineExceeded,
    RequestNotSent,
    UnexpectedAnswer,
    UpstreamError,
    UpstreamRefused,
    UpstreamUnavailable,
)

log = logging.getLogger("sync_core.http")  # the name every log line shows: kept when the module moved

ATTEMPTS = 4  # one call and three retries
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 10.0
RETRY_AFTER_MAX_S = 30.0  # a longer Retry-After is capped: the run has a 10-minute slot
# The most of one answer read: a real page (1,000 rows) is a quarter of a megabyte, LE's answer to 50,000 records
# about ten; past this the call fails instead of the worker's memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
AUTH_EXPIRED_STATUS = frozenset({401, 403})

AnswerT = TypeVar("AnswerT", bound=BaseModel)


class Verdict(Enum):
    """What an upstream answer's status means for the call that got it."""

    ACCEPTED = "accepted"  # below 400: the body is the answer
    RETRIABLE = "retriable"  # 429 and 5xx that pass: asked again after a wait, within the deadline
    AUTH_EXPIRED = "auth_expired"  # 401, 403: the credentials are not accepted; a session logs in again
    REFUSED = "refused"  # any other status from 400 on: asking again would bring the same answer


def classify(status: int) -> Verdict:
    """The one place that sorts upstream statuses."""
    if status in RETRYABLE_STATUS:
        return Verdict.RETRIABLE
    if status in AUTH_EXPIRED_STATUS:
        return Verdict.AUTH_EXPIRED
    return Verdict.REFUSED if status >= 400 else Verdict.ACCEPTED


_ERROR_OF: dict[Verdict, type[UpstreamError]] = {
    Verdict.RETRIABLE: UpstreamUnavailable,
    Verdict.AUTH_EXPIRED: AuthExpired,
    Verdict.REFUSED: UpstreamRefused,
}


def validate_response(response: requests.Response, what: str) -> None:
    """Raise the typed error of an answer that is not to be read; `what` names the call (never its URL)."""
    error = _ERROR_OF.get(classify(response.status_code))
    if error is not None:
        raise error(f"{what} failed: HTTP {response.status_code}", status=response.status_code)


def parse_answer(response: requests.Response, model: type[AnswerT], what: str) -> AnswerT:
    """The body read into its answer model; UnexpectedAnswer (without the body, which may echo input) otherwise."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise UnexpectedAnswer(
            f"{what} failed: the answer (HTTP {response.status_code}) was not the expected JSON",
            status=response.status_code,
        ) from None


def _read_within(response: requests.Response, limit: int, what: str) -> None:
    """Read the body as requests would, but stop past `limit` bytes (a declared length past it is not read at all)."""
    declared = response.headers.get("Content-Length", "")
    body = bytearray()
    if not (declared.isdigit() and int(declared) > limit):
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                break
        else:
            response._content = bytes(body)  # what `response.content` is when requests reads it itself
            return
    response.close()
    raise UnexpectedAnswer(
        f"{what} failed: the answer (HTTP {response.status_code}) was larger than {limit:,} bytes",
        status=response.status_code,
    )


class Deadline:
    """The moment a run stops starting upstream calls (SYNC_RUN_DEADLINE_SECONDS after it started)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self, what: str) -> None:
        if self.remaining() <= 0:
            raise DeadlineExceeded(
                f"the run passed its deadline of {self.seconds:g} s (SYNC_RUN_DEADLINE_SECONDS) before {what}"
            )


class _RetryableAnswer(Exception):
    """A 429 or 5xx answer, kept so the last one can be reported and its Retry-After honoured."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = _retry_after_seconds(response.headers.get("Retry-After"))


# Failures asked again after a wait; any other error of the HTTP library happened before anything was sent.
_RETRIED = (requests.ConnectionError, requests.Timeout, _RetryableAnswer)
# Refused before anything left the process (a header value or URL the HTTP stack will not carry).
_NOT_SENT = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidJSONError,
    UnicodeEncodeError,
)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def new_session(pool_size: int = 4) -> requests.Session:
    """A session that never reads proxy settings from the environment (LeadPier answers 401 to proxied clients)."""
    session = requests.Session()
    session.trust_env = False
    # Retries are tenacity's job below; the adapter only pools connections for concurrent page fetches.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def describe_failure(exc: BaseException) -> str:
    """A short reason without URLs or headers (which could carry secrets)."""
    if isinstance(exc, _RetryableAnswer):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer before the timeout"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed or was refused"
    if isinstance(exc, (requests.RequestException, UnicodeEncodeError)):
        return type(exc).__name__  # their text can quote the header value, a token
    return str(exc)


class Caller:
    """Makes upstream calls: timeout on each, retries on connection errors, timeouts, 429 and 5xx, within a deadline."""

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout_s: float,
        deadline: Deadline,
        attempts: int = ATTEMPTS,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self.session = session
        self.timeout_s = timeout_s
        self.deadline = deadline
        self.attempts = attempts
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s / 4
        )
        self.calls = 0  # every HTTP request sent, retries included (for run records and the benchmark)
        self._calls_lock = threading.Lock()  # page fetches run in several threads

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableAnswer) and exc.retry_after is not None:
            return min(exc.retry_after, RETRY_AFTER_MAX_S)
        return self._backoff(state)

    def _stop(self, state: RetryCallState) -> bool:
        # Never sleep past the deadline: stop now and report the last failure instead.
        return stop_after_attempt(self.attempts)(state) or self.deadline.remaining() <= (state.upcoming_sleep or 0)

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The response of the first attempt that is not retryable; UpstreamUnavailable once retries are spent.

        `content` is a body serialised already (the caller sets its content-type), sent as is on every attempt.
        """

        def attempt() -> requests.Response:
            self.deadline.check(what)
            timeout = min(self.timeout_s, max(self.deadline.remaining(), 0.1))
            with self._calls_lock:
                self.calls += 1
            response = self.session.request(
                method, url, json=json, data=content, headers=dict(headers or {}), timeout=timeout, stream=True
            )
            _read_within(response, MAX_ANSWER_BYTES, what)
            if classify(response.status_code) is Verdict.RETRIABLE:
                raise _RetryableAnswer(response)
            return response

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s failed (%s); retry %d of %d in %.1f s",
                what,
                describe_failure(exc) if exc else "?",
                state.attempt_number,
                self.attempts - 1,
                state.upcoming_sleep or 0,
            )

        retrying = Retrying(
            retry=retry_if_exception_type(_RETRIED),
            stop=self._stop,
            wait=self._wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except DeadlineExceeded:
            raise
        except _RETRIED as exc:
            made = self._attempts_made(retrying)
            cut = "; no time was left for another before the run's deadline" if made < self.attempts else ""
            status = exc.response.status_code if isinstance(exc, _RetryableAnswer) else None
            raise UpstreamUnavailable(
                f"{what} failed after {made} attempt(s): {describe_failure(exc)}{cut}", status=status
            ) from None
        except (requests.RequestException, UnicodeEncodeError) as exc:
            # Not a failure that waiting mends: said as it is, with no word of the deadline.
            error = RequestNotSent if isinstance(exc, _NOT_SENT) else UpstreamUnavailable
            raise error(f"{what} failed after 1 attempt(s): {describe_failure(exc)} (not retried)") from None

    def call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        answer: type[AnswerT],
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AnswerT:
        """A request whose answer is sorted and read: the answer model, or UpstreamUnavailable, AuthExpired,
        UpstreamRefused, UnexpectedAnswer (or DeadlineExceeded); call sites handle these and check no status."""
        response = self.request(method, url, what=what, json=json, content=content, headers=headers)
        # The body sent is not needed to read the answer: let it go first (a day's PUT of 50,000 records is 7 MB,
        # and LE's answer to it is read into a model of as many details).
        del json, content
        response.request.body = None
        validate_response(response, what)
        return parse_answer(response, answer, what)

    @staticmethod
    def _attempts_made(retrying: Retrying) -> int:
        return int(retrying.statistics.get("attempt_number", 1))
