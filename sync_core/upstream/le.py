"""The LE client: one PUT of a whole report day, and its answer read into a model."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
        what = f"LE update for {day.isoformat()}"
        payload = LePayload(report_date=day.isoformat(), data=records)
        # Serialised by pydantic straight to JSON: for 50,000 records, a fifth of the time and no dict per record.
        answer = self._caller.call(
            "PUT", self._url, what=what, answer=LeAnswer, content=payload.model_dump_json().encode(),
            headers=self._headers,
        )  # fmt: skip
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
