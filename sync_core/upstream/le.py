"""The LE client: one PUT of a whole report day, and its answer read into a model."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sync_core.rules.transform import LePayload, LeRecord
from sync_core.untrusted import one_line
from sync_core.upstream.http import Caller

log = logging.getLogger("sync_core.le")  # the name every log line shows: kept when the module moved


class LeAnswer(BaseModel):
    """LE's reply to a PUT; `success: false` comes with a `message`."""

    model_config = ConfigDict(extra="ignore")

    success: bool
    matched: int = 0
    unmatched: int = 0
    total_received: int = 0
    details: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    message: str | None = None


_RECORDS = TypeAdapter(list[LeRecord])


def records_json(records: list[LeRecord]) -> bytes:
    """Records as they stand inside the body's `data` array (LePayload's JSON of them, without the brackets)."""
    return _RECORDS.dump_json(records)[1:-1]


class DayBody:
    """A day's PUT body, built a page at a time: each page's records are serialised as the page arrives (its JSON
    kept, not the records), and the body is assembled once, at the PUT. The bytes are LePayload's JSON of the day."""

    def __init__(self, day: date) -> None:
        self.day = day
        self.records = 0
        self._fragments: list[bytes] = []

    def add(self, fragment: bytes, records: int) -> None:
        """One page's records, as `records_json` wrote them."""
        if records:
            self._fragments.append(fragment)
            self.records += records

    def encode(self) -> bytes:
        """The whole body; the fragments are let go (the body is held once)."""
        empty = LePayload(report_date=self.day.isoformat(), data=[]).model_dump_json().encode()
        head, tail = empty.removesuffix(b"]}"), b"]}"  # `{"report_date":...,"data":[` and `]}`
        parts = [head]
        for number, fragment in enumerate(self._fragments):
            parts += (b",", fragment) if number else (fragment,)
        parts.append(tail)
        self._fragments = []
        return b"".join(parts)


class LeClient:
    """Sends report days to LE; a refused PUT (a wrong X-API-Key: AuthExpired) fails the day, as any other."""

    def __init__(self, *, url: str, api_key: str | None, caller: Caller) -> None:
        self._url = url
        self._caller = caller
        self._headers = {"accept": "application/json", "content-type": "application/json"}
        if api_key:
            self._headers["X-API-Key"] = api_key

    def put_day(self, day: date, records: list[LeRecord]) -> LeAnswer:
        """Replace LE's figures for the day; safe to repeat (the PUT carries the whole day)."""
        body = DayBody(day)
        body.add(records_json(records), len(records))
        return self.put_body(body)

    def put_body(self, body: DayBody) -> LeAnswer:
        """`put_day` with the day's records serialised already, page by page (pydantic straight to JSON: no dict per
        record)."""
        day = body.day
        what = f"LE update for {day.isoformat()}"
        answer = self._caller.call(
            "PUT", self._url, what=what, answer=LeAnswer, content=body.encode(), headers=self._headers
        )
        log.info(
            "LE answered for %s: success=%s matched=%d unmatched=%d total_received=%d%s",
            day.isoformat(),
            answer.success,
            answer.matched,
            answer.unmatched,
            answer.total_received,
            f' message="{one_line(answer.message)}"' if answer.message else "",
        )
        return answer
