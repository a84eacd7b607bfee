"""What GET /health answers: the document and the model of each of its checks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sync_core.state.queues import POISON_QUEUE
from sync_core.web.runtime_info import RuntimeCheck

CheckState = Literal["ok", "warning", "error", "skipped"]
HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class SettingsCheck(BaseModel):
    status: CheckState
    detail: str


class StorageCheck(BaseModel):
    status: CheckState
    detail: str
    target: str | None = Field(None, description="the state container, without any key")


class LastSuccessCheck(BaseModel):
    status: CheckState
    detail: str
    finished_at: str | None = Field(None, description="ISO 8601 in SYNC_TIMEZONE")
    age_seconds: int | None = None
    stale_after_seconds: int | None = Field(None, description="three schedule intervals")


class PoisonQueueCheck(BaseModel):
    status: CheckState
    detail: str
    queue: str = POISON_QUEUE
    messages: int | None = None


class TimerCheck(BaseModel):
    status: CheckState
    schedule: str = Field(description="the NCRONTAB the host runs the timer on")
    run_on_startup: bool
    problems: list[str] = Field(default_factory=list, description="settings the host could not use at load time")


class CatchUpCheck(BaseModel):
    status: CheckState
    detail: str
    oldest_unfinalized_day: str | None = None
    pending_days: list[str] = Field(default_factory=list, description="past days the next runs sync by themselves")
    beyond_window: list[str] = Field(default_factory=list, description="days only a backfill reaches")
    backfill: list[str] = Field(default_factory=list, description="the manual runs to start for them")


class RecordingCheck(BaseModel):
    status: CheckState
    detail: str
    pending_repairs: list[str] = Field(
        default_factory=list, description="runs whose counters or log lines the next run writes from their record"
    )
    unrecorded_run: str | None = Field(None, description="the latest run of this instance that had no record")


class HealthChecks(BaseModel):
    settings: SettingsCheck
    storage: StorageCheck
    last_success: LastSuccessCheck
    poison_queue: PoisonQueueCheck
    timer: TimerCheck
    catch_up: CatchUpCheck
    runtime: RuntimeCheck
    recording: RecordingCheck


class HealthDocument(BaseModel):
    status: HealthStatus
    scheduler_running: bool
    timestamp: str = Field(description="ISO 8601 with offset, in SYNC_TIMEZONE")
    version: str
    reason: str | None = Field(None, description="why the status is not healthy")
    checks: HealthChecks
