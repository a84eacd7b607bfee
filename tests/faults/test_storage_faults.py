"""Storage trouble on a real Azurite: down before and during a run, corrupt state blobs, concurrent writers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.state.records import JobStats, LeadPierSession
from tests.faults.conftest import (
    DAY,
    assert_recovered,
    blob_text,
    day_log,
    expected_records,
    job_stats,
    sent_days,
    state,
    sync,
    wait_for,
)
from tests.faults.test_leadpier_faults import _readable

GARBAGE = [
    pytest.param(b"\x00\xff\xfe\x9c not json at all", id="binary"),
    pytest.param(b'{"token": "abc", "total_runs": ', id="truncated"),
    pytest.param(b"[1, 2, 3]", id="wrong-shape"),
    pytest.param(b"", id="empty"),
]


def _container(azurite: Azurite, env: dict[str, str]) -> ContainerClient:
    return ContainerClient.from_connection_string(azurite.connection_string, env["SYNC_STATE_CONTAINER"])


def test_storage_down_before_a_run(
    fresh_env: dict[str, str], azurite_fresh: Azurite, leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    azurite_fresh.stop()

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error).startswith("storage unreachable while taking the lock")
    # Nothing upstream is touched without the lock.
    assert leadpier.requests == [] and le.puts == []

    azurite_fresh.start()
    assert_recovered(le, leadpier, rows)
    assert job_stats().total_runs == 1  # the run that could not reach storage could not be counted either


def test_storage_down_during_a_run(
    fresh_env: dict[str, str],
    azurite_fresh: Azurite,
    leadpier: FakeLeadPier,
    le: FakeLE,
    rows: list[dict[str, Any]],
    background: Any,
) -> None:
    # The PUT is held just under the 1 s timeout; meanwhile storage goes away.
    le.faults.add("put", delay_s=0.8)

    run = background()
    wait_for(lambda: len(le.puts) == 1, "the run to send its PUT")
    azurite_fresh.stop()
    record = run.result()

    # The run did its job: LE accepted the day. That it could not record itself is said on its own.
    assert record.status == "success", record.error
    assert record.recording is not None
    assert record.recording.missing == ["run_record", "job_stats", "day_log"]
    assert record.sent_records == expected_records(rows)

    azurite_fresh.start()
    assert not state().lock_is_held()
    assert_recovered(le, leadpier, rows)
    container = _container(azurite_fresh, fresh_env)
    statuses = [json.loads(blob_text(container, b.name))["status"] for b in container.list_blobs("runs/")]
    assert statuses == ["success"]


@pytest.mark.parametrize("setting", ["SYNC_STORAGE_CONNECTION", "AzureWebJobsStorage"])
def test_malformed_storage_connection_string_is_a_settings_error(
    setting: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    leadpier: FakeLeadPier,
    le: FakeLE,
    rows: list[dict[str, Any]],
) -> None:
    monkeypatch.setenv(setting, "AccountName=devstoreaccount1;this is not a connection string")

    record = sync()

    assert record.status == "failed"
    assert _readable(record.error).startswith(f"{setting} is not a valid storage connection string")
    assert leadpier.requests == [] and le.puts == []
    monkeypatch.setenv(setting, env["AzureWebJobsStorage"])
    assert_recovered(le, leadpier, rows)


def test_container_deleted_between_runs_is_recreated(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]], blob_container: ContainerClient
) -> None:
    assert sync().status == "success"
    blob_container.delete_container()

    record = sync()

    assert record.status == "success", record.error
    assert job_stats().total_runs == 1
    assert leadpier.logins == 2  # the stored session went with the container


@pytest.mark.parametrize("garbage", GARBAGE)
def test_corrupt_source_json(
    garbage: bytes,
    env: dict[str, str],
    leadpier: FakeLeadPier,
    le: FakeLE,
    rows: list[dict[str, Any]],
    blob_container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert sync().status == "success"
    blob_container.upload_blob("source.json", garbage, overwrite=True)

    record = sync()

    assert record.status == "success", record.error
    assert leadpier.logins == 2  # the unreadable session is treated as none: log in again
    assert "source.json is corrupt or unreadable; treating it as empty and rewriting it whole" in day_log(
        blob_container
    )
    assert any(r.levelname == "WARNING" and "source.json is corrupt" in r.getMessage() for r in caplog.records)
    session = LeadPierSession.model_validate_json(blob_text(blob_container, "source.json"))
    assert session.token == leadpier.issued_tokens[-1]
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    assert not state().lock_is_held()


@pytest.mark.parametrize("garbage", GARBAGE)
def test_corrupt_job_stats_json(
    garbage: bytes,
    env: dict[str, str],
    leadpier: FakeLeadPier,
    le: FakeLE,
    rows: list[dict[str, Any]],
    blob_container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert sync().status == "success"
    blob_container.upload_blob("job_stats.json", garbage, overwrite=True)

    record = sync()

    assert record.status == "success", record.error
    assert any(r.levelname == "WARNING" and "job_stats.json is corrupt" in r.getMessage() for r in caplog.records)
    assert "job_stats.json is corrupt or unreadable" in day_log(blob_container)
    stats = JobStats.model_validate_json(blob_text(blob_container, "job_stats.json"))
    # Treated as empty, then rebuilt from the run records: the earlier run counted again once, and this one.
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs) == (2, 2, 0)
    assert stats.last_execution is not None and stats.last_execution.run_id == record.run_id
    assert stats.log_lines == {next(iter(stats.log_lines)): day_log(blob_container).count("\n")}
    assert_recovered(le, leadpier, rows)
    assert job_stats().total_runs == 3


def test_etag_conflict_from_a_concurrent_writer_loses_no_counter(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    assert sync().status == "success"
    ours, theirs = state(), state()
    attempts = 0

    def count_a_run(stats: JobStats) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            # Another writer updates job_stats.json between our read and our conditional write.
            theirs.update_job_stats(lambda s: setattr(s, "skipped_runs", s.skipped_runs + 1))
        stats.total_runs += 1

    ours.update_job_stats(count_a_run)

    assert attempts == 2  # the first write met the ETag conflict, the second was on the re-read document
    stats = job_stats()
    assert (stats.total_runs, stats.skipped_runs) == (2, 1)


def test_runs_and_a_concurrent_writer_keep_every_count(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, background: Any
) -> None:
    """Another writer keeps updating job_stats.json (as skipped runs do) while runs record themselves:
    every increment of both survives. (A writer in a tight loop could starve any optimistic scheme; the
    deterministic conflict is the test above.)"""
    import threading

    stop = threading.Event()
    written = 0

    def hammer() -> None:
        nonlocal written
        store = state()
        while not stop.is_set():
            store.update_job_stats(lambda s: setattr(s, "skipped_runs", s.skipped_runs + 1))
            written += 1
            stop.wait(0.05)

    writer = threading.Thread(target=hammer, daemon=True)
    writer.start()
    try:
        records = [sync() for _ in range(3)]
    finally:
        stop.set()
        writer.join(30)

    assert [r.status for r in records] == ["success"] * 3, [r.error for r in records]
    stats = job_stats()
    assert (stats.total_runs, stats.successful_runs, stats.skipped_runs) == (3, 3, written)
