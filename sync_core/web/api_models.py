"""The HTTP routes' request and response models: what each route accepts, and the 400 that says what is allowed."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sync_core.rules.days import OptionalDay
from sync_core.state.records import RunRecord, RunStatus
from sync_core.telemetry.runlog import MAX_LOG_LINES
from sync_core.untrusted import one_line
from sync_core.web.responses import bad_request

MAX_RUNS_LIMIT = 100
DEFAULT_RUNS_LIMIT = 20


# -- requests ------------------------------------------------------------------------------------------


def _bool(value: Any) -> Any:
    """Only JSON true or false: pydantic's lax booleans would take 0, "yes", "off" and 1.0."""
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


OptionalBool = Annotated[bool | None, BeforeValidator(_bool)]


def _plain_fields(schema: dict[str, Any]) -> None:
    """Fields that may be absent but not null: say so, and drop the `default: null` that string schemas cannot hold."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", "") is None:
            del prop["default"]
        if "anyOf" in prop:
            prop.update(next(p for p in prop.pop("anyOf") if p.get("type") != "null"))


def _trigger_schema(schema: dict[str, Any]) -> None:
    _plain_fields(schema)
    present = [{"required": [name]} for name in ("date", "from", "to")]
    schema["oneOf"] = [
        {"title": "today", "not": {"anyOf": present}},
        {"title": "one day", "required": ["date"], "not": {"anyOf": present[1:]}},
        {"title": "a range", "required": ["from", "to"], "not": present[0]},
    ]


class LogsQuery(BaseModel):
    """Query of GET /logs and GET /logs/download."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_plain_fields)

    lines: int = Field(
        50, ge=1, le=MAX_LOG_LINES, description=f"how many of the last lines, a whole number from 1 to {MAX_LOG_LINES}"
    )
    date: OptionalDay = Field(None, description="the day, YYYY-MM-DD (default: today in SYNC_TIMEZONE)")


class LogDownloadQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_plain_fields)

    date: OptionalDay = Field(None, description="the day, YYYY-MM-DD (default: today in SYNC_TIMEZONE)")


def _moment(value: Any) -> Any:
    """Only ISO 8601 text with a UTC offset: a time without one would be read in whichever zone the reader assumes."""
    if isinstance(value, datetime):
        return value
    moment = None
    if isinstance(value, str) and value.isascii() and len(value) <= 40:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value)
    if moment is None or moment.tzinfo is None:
        raise ValueError("must be a time in ISO 8601 with its offset, such as 2026-02-13T18:00:00Z")
    return moment


OptionalMoment = Annotated[datetime | None, BeforeValidator(_moment)]


class RunsQuery(BaseModel):
    """Query of GET /runs."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_plain_fields)

    limit: int = Field(
        DEFAULT_RUNS_LIMIT,
        ge=1,
        le=MAX_RUNS_LIMIT,
        description=f"how many runs, newest first, a whole number from 1 to {MAX_RUNS_LIMIT}",
    )
    since: OptionalMoment = Field(
        None,
        description="only runs that started (or were queued) at or after this time, ISO 8601 with offset",
        json_schema_extra={"format": "date-time"},
    )
    until: OptionalMoment = Field(
        None,
        description="only runs that started (or were queued) before this time, ISO 8601 with offset",
        json_schema_extra={"format": "date-time"},
    )
    status: RunStatus | None = Field(None, description="only runs with this status")

    @model_validator(mode="after")
    def _in_order(self) -> RunsQuery:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class TriggerBody(BaseModel):
    """Optional body of POST /trigger: no body runs today (and yesterday until final), `date` one day, `from`/`to` a range."""

    # By the JSON names only: "day" or "first" are unknown fields. The schema states the three shapes as oneOf.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_trigger_schema)

    day: OptionalDay = Field(None, alias="date", description="sync this one day, YYYY-MM-DD")
    first: OptionalDay = Field(None, alias="from", description="first day of a range, YYYY-MM-DD (31 days at most)")
    last: OptionalDay = Field(None, alias="to", description="last day of the range, YYYY-MM-DD")
    dry_run: OptionalBool = Field(
        None, description="fetch, transform and record, but send nothing to LE (default: SYNC_DRY_RUN)"
    )
    relogin: OptionalBool = Field(
        None,
        description="true: drop the stored LeadPier session first, so the next run logs in again (after a password change)",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> TriggerBody:
        if self.day and (self.first or self.last):
            raise ValueError('give either "date" or "from" and "to", not both')
        if bool(self.first) != bool(self.last):
            raise ValueError('"from" and "to" go together')
        return self


def json_kind(value: Any) -> str:
    """What a JSON value is, in words (JSON's own names: null, not None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def shown(value: Any) -> str:
    """A caller's value as a 400 repeats it: text quoted, escaped and cut; anything else named, never printed whole
    (a deeply nested array cannot even be printed)."""
    if isinstance(value, str):
        return f"'{one_line(value, 40)}'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return one_line(value, 40)
    return json_kind(value)


_ALLOWED = {
    "lines": f"lines must be a whole number from 1 to {MAX_LOG_LINES}",
    "limit": f"limit must be a whole number from 1 to {MAX_RUNS_LIMIT}",
    "status": "status must be one of " + ", ".join(get_args(RunStatus)),
}


def parse(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """The validated model, or a 400 that names the input, what is wrong and what is allowed."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else ""
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f'"{f.alias or n}"' for n, f in model.model_fields.items())
                problems.append(f'unknown field "{name}"; allowed fields: {allowed}')
            elif name in _ALLOWED:
                problems.append(f"{_ALLOWED[name]} (got {shown(err.get('input'))})")
            elif err["type"] == "value_error" and name:  # our own validators say what the value must be
                problems.append(
                    f"{name} {str(err['msg']).removeprefix('Value error, ')} (got {shown(err.get('input'))})"
                )
            else:
                problems.append(str(err.get("msg", "invalid input")).removeprefix("Value error, "))
        raise bad_request("; ".join(problems)) from None


# -- answers -------------------------------------------------------------------------------------------


class ServiceInfo(BaseModel):
    service: str
    version: str
    status: Literal["running"]
    endpoints: dict[str, str]


class RunList(BaseModel):
    runs: list[RunRecord]
    count: int


class LogTail(BaseModel):
    log_file: str
    total_lines: int
    showing: int
    logs: list[str]
    message: str | None = None


class TriggerAccepted(BaseModel):
    status: Literal["triggered"]
    message: str
    run_id: str
    report_dates: list[str] = Field(
        default_factory=list, description="the days asked for; empty: today (and yesterday until final)"
    )
    child_run_ids: list[str] = Field(
        default_factory=list, description="a range: one run per day, each its own queue message"
    )


class AlreadyRunning(BaseModel):
    status: Literal["already_running"]
    message: str
