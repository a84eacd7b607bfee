"""Fixtures for the fault suite: the app pointed at the stand-ins with a 1 s HTTP timeout, and helpers to run and check."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.azurite import Azurite
from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.settings import load_settings
from sync_core.state.records import JobStats, RunRecord
from sync_core.state.store import StateStore

# A fixed past day: each run names it, so a run makes exactly one day's calls and the counts below are exact.
DAY = date(2026, 2, 13)
ROWS = 40
ATTEMPTS = 4  # sync_core.upstream.http.ATTEMPTS, restated: the test fails if the retry budget changes unnoticed


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return generate_rows(ROWS, DAY, seed=4)


@pytest.fixture
def env(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, rows: list[dict[str, Any]]
) -> dict[str, str]:
    """sync_env with a 1 s HTTP timeout and the day's rows served by the fake LeadPier."""
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "1")
    leadpier.set_rows(DAY, rows)
    return {**sync_env, "HTTP_TIMEOUT_SECONDS": "1"}


@pytest.fixture
def fresh_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, azurite_fresh: Azurite) -> dict[str, str]:
    """env on a private Azurite that the test may stop and start."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite_fresh.connection_string)
    return {**env, "AzureWebJobsStorage": azurite_fresh.connection_string}


def sync(**request: Any) -> RunRecord:
    """One in-process run of DAY (trigger `cli`), as `python -m sync_core sync --date` makes it."""
    request.setdefault("trigger", "cli")
    request.setdefault("dates", [DAY])
    return run_sync(RunRequest(**request))


def state() -> StateStore:
    return StateStore(load_settings().storage)


def job_stats() -> JobStats:
    return state().load_job_stats()[0]


def blob_text(container: ContainerClient, name: str) -> str:
    return container.get_blob_client(name).download_blob().readall().decode("utf-8", "replace")


def day_log(container: ContainerClient) -> str:
    """Every day's log blob, concatenated (a run's lines go to the day of its start in SYNC_TIMEZONE)."""
    return "".join(blob_text(container, b.name) for b in container.list_blobs(name_starts_with="logs/"))


def sent_days(le: FakeLE) -> dict[str, list[dict[str, Any]]]:
    return le.received_days()


def expected_records(rows: list[dict[str, Any]]) -> int:
    """Rows the generator made readable and with visitors: what LE must receive for the day."""
    from sync_core.rules.transform import transform_rows

    return len(transform_rows(rows).records)


def assert_recovered(le: FakeLE, leadpier: FakeLeadPier, rows: list[dict[str, Any]]) -> RunRecord:
    """After a failure: the lock is free, and the next run (faults gone) starts clean and succeeds."""
    leadpier.faults.clear()
    le.faults.clear()
    store = state()
    assert not store.lock_is_held(), "the failed run left the lock held"
    record = sync()
    assert record.status == "success", record.error
    assert record.error is None
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    assert not store.lock_is_held()
    return record


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait for something a background run will do; a bound so a broken run fails the test instead of hanging."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


class Background:
    """A run in a thread, so the test can act on the world while it runs."""

    def __init__(self, **request: Any) -> None:
        self.record: RunRecord | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, kwargs=request, daemon=True)

    def _run(self, **request: Any) -> None:
        try:
            self.record = sync(**request)
        except BaseException as exc:
            self.error = exc

    def start(self) -> Background:
        self._thread.start()
        return self

    def result(self, timeout_s: float = 60.0) -> RunRecord:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the run did not end"
        if self.error is not None:
            raise self.error
        assert self.record is not None
        return self.record


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    runs: list[Background] = []

    def start(**request: Any) -> Background:
        run = Background(**request).start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        run._thread.join(30)


def subprocess_env() -> dict[str, str]:
    """The current (monkeypatched) environment, for `python -m sync_core` child processes."""
    return dict(os.environ)
