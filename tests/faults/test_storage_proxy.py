"""Azure Storage's everyday faults, injected by a proxy between the storage SDK and Azurite.

For each fault on each kind of request a run makes (lease, reads, the end-of-run writes), the run's outcome,
its record, the counters, the lease and the day's log must come out exactly as without the fault: nothing
lost, nothing written twice. The HTTP routes answer a stalled account with a 503 instead of hanging.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from sandbox.faultproxy import KINDS, FaultProxy, matching
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core import services
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.services import Services, timing, use_timing
from sync_core.settings import load_settings
from sync_core.state.records import JobStats, RunRecord
from sync_core.state.store import StateStore
from sync_core.web import api
from sync_core.web.health import health
from sync_core.web.responses import ApiResponse
from tests.faults.conftest import DAY, expected_records

CLIENT_TIMEOUT_S = 1.5  # the state store's read timeout in these tests; a stall outlasts it
STALL_S = 2.5

# The requests a run makes to storage, by what they touch (paths as the SDK sends them).
TARGETS = {
    "lease": matching("PUT", r"/locks/sync\.lock\?.*comp=lease"),
    "stats_read": matching("GET", r"/job_stats\.json"),
    "stats_write": matching("PUT", r"/job_stats\.json"),
    "session_write": matching("PUT", r"/source\.json"),
    "run_record": matching("PUT", r"/runs/"),
    "log_size": matching("HEAD", r"/logs/"),
    "log_append": matching("PUT", r"/logs/.*comp=appendblock"),
}


@pytest.fixture
def proxy(azurite: Azurite) -> Iterator[FaultProxy]:
    with FaultProxy(azurite.blob_port, stall_s=STALL_S, seed=7) as blob_proxy:
        yield blob_proxy


@pytest.fixture
def proxied(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy, azurite: Azurite
) -> dict[str, str]:
    """The app's storage reached through the proxy (the test's own reads go straight to Azurite)."""
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT_NAME};QueueEndpoint={azurite.queue_endpoint};"
    )
    monkeypatch.setenv("AzureWebJobsStorage", conn)
    return {**env, "AzureWebJobsStorage": conn}


def run(**request: Any) -> RunRecord:
    request.setdefault("trigger", "cli")
    request.setdefault("dates", [DAY])
    settings = load_settings()
    store = StateStore(settings.storage, timeout_s=CLIENT_TIMEOUT_S, retry_backoff_s=0.2)
    return run_sync(RunRequest(**request), services=Services.build(settings, store=store))


def direct(azurite: Azurite, env: dict[str, str]) -> ContainerClient:
    return ContainerClient.from_connection_string(azurite.connection_string, env["SYNC_STATE_CONTAINER"])


def stored_runs(container: ContainerClient) -> list[RunRecord]:
    return [
        RunRecord.model_validate_json(container.download_blob(b.name).readall())
        for b in container.list_blobs(name_starts_with="runs/")
    ]


def stored_stats(container: ContainerClient) -> JobStats:
    return JobStats.model_validate_json(container.download_blob("job_stats.json").readall())


def day_log(container: ContainerClient) -> str:
    return "".join(
        container.download_blob(b.name).readall().decode() for b in container.list_blobs(name_starts_with="logs/")
    )


def lease_state(container: ContainerClient) -> str:
    return str(container.get_blob_client("locks/sync.lock").get_blob_properties().lease.state)


def assert_exactly_once(container: ContainerClient, records: list[RunRecord]) -> None:
    """Every run: one record blob, counted once, its lines once in the day's log; the lease free."""
    stored = {r.run_id: r for r in stored_runs(container)}
    assert sorted(stored) == sorted(r.run_id for r in records)
    stats = stored_stats(container)
    statuses = [stored[r.run_id].status for r in records]
    assert stats.successful_runs == statuses.count("success")
    assert stats.failed_runs == statuses.count("failed") + statuses.count("warning")
    assert stats.skipped_runs == statuses.count("skipped")
    text = day_log(container)
    for record in records:
        assert text.count(f"Run {record.run_id} finished") == 1, f"{record.run_id} logged {text.count(record.run_id)}x"
    lines = text.count("\n")
    assert sum(stats.log_lines.values()) == lines
    assert lease_state(container) != "leased"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", list(TARGETS))
def test_one_storage_fault_changes_nothing_a_user_sees(
    target: str, kind: str, proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier,
    le: FakeLE, rows: list[dict[str, Any]],
) -> None:  # fmt: skip
    first = run()  # the blobs exist, so every kind of request below is made by the next run
    if target == "session_write":
        direct(azurite, proxied).delete_blob("source.json")  # the next run logs in and saves a new session
    proxy.plan(kind, match=TARGETS[target])

    record = run()

    assert proxy.counts()[kind] == 1, "the fault was never met"
    assert record.status == "success", record.error
    assert len(le.received_days()[DAY.isoformat()]) == expected_records(rows)
    container = direct(azurite, proxied)
    assert_exactly_once(container, [first, record])
    assert stored_stats(container).total_runs == 2


@pytest.mark.parametrize("kind", ["busy", "timeout500", "reset_after"])
@pytest.mark.parametrize("target", ["stats_write", "log_append", "run_record"])
def test_a_write_failing_past_the_sdk_retries_is_retried_by_the_app_without_doubling(
    target: str, kind: str, proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier,
    le: FakeLE,
) -> None:  # fmt: skip
    proxy.plan(kind, times=3, match=TARGETS[target])  # the SDK's three tries all fail

    record = run()

    assert proxy.counts()[kind] == 3
    assert record.status == "success", record.error
    assert_exactly_once(direct(azurite, proxied), [record])


def test_a_lost_answer_to_the_first_lease_acquire_does_not_skip_the_run(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    run()
    proxy.plan("reset_after", match=TARGETS["lease"])  # the lease is granted, the answer lost, the SDK asks again

    record = run()

    assert record.status == "success", record.error  # not "skipped" by its own lease
    assert_exactly_once(direct(azurite, proxied), stored_runs(direct(azurite, proxied)))


def test_a_mix_of_faults_at_a_rate_keeps_every_run_exact(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    proxy.set_rate(0.1)

    records = [run() for _ in range(4)]

    proxy.clear()
    assert sum(proxy.counts().values()) > 0
    container = direct(azurite, proxied)
    recorded = [r for r in records if "while taking the lock" not in (r.error or "")]
    assert_exactly_once(container, recorded)
    for record in recorded:
        assert {"success", "failed"} >= {record.status}
    # Whatever failed on the way, the next clean run succeeds and LE holds the whole day.
    assert run().status == "success"


def test_the_routes_answer_a_stalled_account_with_503_not_a_hang(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run()
    monkeypatch.setattr(services, "ROUTE_STORAGE_TIMEOUT_S", CLIENT_TIMEOUT_S)
    proxy.stall_s = 30
    proxy.set_rate(1.0, kinds=("stall",))
    answers: dict[str, tuple[int, float]] = {}

    routes: dict[str, Callable[[], ApiResponse]] = {
        "/status": lambda: api.status(),
        "/runs": lambda: api.runs({}, None),
        "/logs": lambda: api.logs({"lines": "5", "date": DAY.isoformat()}),
        "/health": lambda: health(),
    }
    for name, call in routes.items():
        started = time.monotonic()
        response = call()
        answers[name] = (response.status_code, time.monotonic() - started)
        body = json.loads(response.body)
        assert "Traceback" not in response.body.decode()
        if name == "/health":
            assert (response.status_code, body["status"]) == (503, "unhealthy")
            assert "storage" in body["reason"]
        else:
            assert response.status_code == 503, body
            assert body["error"].startswith("storage unreachable while")
    proxy.clear()
    print("answers under a stalled account (status, seconds):", answers)  # figures for docs/RELIABILITY.md


@pytest.mark.parametrize("kind", ["busy", "reset_before", "stall"])
def test_health_reports_a_faulty_queue_service_without_hanging(
    kind: str, proxied: dict[str, str], azurite: Azurite, monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier,
    le: FakeLE,
) -> None:  # fmt: skip
    """The queue port (the poison-queue count of /health) behind its own proxy; the blob side stays clean."""
    run()
    with FaultProxy(azurite.queue_port, stall_s=30) as queue_proxy:
        conn = proxied["AzureWebJobsStorage"].replace(
            azurite.queue_endpoint, f"http://127.0.0.1:{queue_proxy.port}/{ACCOUNT_NAME}"
        )
        monkeypatch.setenv("AzureWebJobsStorage", conn)
        queue_proxy.set_rate(1.0, kinds=(kind,))

        response = health()

        assert queue_proxy.counts()[kind] >= 1
    body = json.loads(response.body)
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["poison_queue"]["status"] == "error"
    assert body["checks"]["poison_queue"]["messages"] is None


# -- a throttled account: 40 % of writes fail ------------------------------------------------------------------

WRITE_FAULT_RATE = 0.4
READ_FAULT_RATE = 0.15
# Azure throttling as seen from outside: busy and timed-out answers on any request, lost answers on writes.
THROTTLED_WRITES = ("busy", "busy", "timeout500", *["reset_after"] * 5)
THROTTLED_READS = ("busy", "busy", "timeout500")


def wait_for_the_lease(container: ContainerClient, timeout_s: float = 40.0) -> None:
    """A lease granted while its answer was lost, and not given back, lapses within 30 s."""
    end = time.monotonic() + timeout_s
    while lease_state(container) == "leased":
        assert time.monotonic() < end, "the lease never lapsed"
        time.sleep(0.5)


def took_the_lock(record: RunRecord) -> bool:
    return "while taking the lock" not in (record.error or "")


@pytest.mark.parametrize("kind", [*KINDS, "throttled"])
def test_at_40_percent_of_writes_every_run_says_what_it_did_and_the_next_run_repairs_the_rest(
    kind: str, proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE,
    rows: list[dict[str, Any]],
) -> None:  # fmt: skip
    first = run()
    if kind == "throttled":
        proxy.set_rate(READ_FAULT_RATE, kinds=THROTTLED_READS, writes=WRITE_FAULT_RATE, write_kinds=THROTTLED_WRITES)
    else:
        proxy.set_rate(0.0, writes=WRITE_FAULT_RATE, write_kinds=(kind,))

    records = [run() for _ in range(4)]

    proxy.clear()
    assert proxy.counts(writes=True)[kind if kind != "throttled" else "reset_after"] > 0
    # LE accepted the day every time: a run that took the lock is a success whatever its bookkeeping met.
    recorded = [r for r in records if took_the_lock(r)]
    assert recorded, "no run took the lock"
    for record in recorded:
        assert record.status in ("success", "skipped"), record.error
        assert record.recording is None or "run_record" not in record.recording.missing
    assert len(le.received_days()[DAY.isoformat()]) == expected_records(rows)
    container = direct(azurite, proxied)
    wait_for_the_lease(container)
    last = run()  # faults gone: repairs whatever the runs above could not write
    assert last.status == "success" and last.recording is None
    assert_exactly_once(container, [first, *recorded, last])
    assert stored_stats(container).unlogged_runs == {}
    assert json.loads(api.status().body)["recording"]["status"] == "ok"


def test_a_day_log_that_cannot_be_written_is_noted_on_the_record_and_appended_once_by_the_next_run(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    proxy.plan("busy", times=50, match=TARGETS["log_append"])  # every try of the SDK and of the app

    deferred = run()

    assert deferred.status == "success", deferred.error  # LE accepted the day: that is the outcome
    assert deferred.recording is not None
    assert (deferred.recording.status, deferred.recording.missing) == ("incomplete", ["day_log"])
    container = direct(azurite, proxied)
    stored = {r.run_id: r for r in stored_runs(container)}
    assert stored[deferred.run_id].recording == deferred.recording
    assert stored[deferred.run_id].log_lines[-1].endswith(deferred.log_lines[-1])
    assert f"Run {deferred.run_id} finished" not in day_log(container)
    assert list(stored_stats(container).unlogged_runs) == [deferred.run_id]
    status = json.loads(api.status().body)["recording"]
    assert status["status"] == "repairs_pending"
    assert status["pending_repairs"] == [{"run_id": deferred.run_id, "missing": ["day_log"]}]
    checked = json.loads(health().body)
    assert checked["status"] == "degraded"
    assert checked["checks"]["recording"]["pending_repairs"] == [deferred.run_id]
    proxy.clear()

    repairing = run()

    assert_exactly_once(container, [deferred, repairing])
    repaired = {r.run_id: r for r in stored_runs(container)}[deferred.run_id].recording
    assert repaired is not None
    assert (repaired.status, repaired.missing, repaired.repaired_by) == ("repaired", ["day_log"], repairing.run_id)
    assert stored_stats(container).unlogged_runs == {}
    assert json.loads(api.status().body)["recording"] == {
        "status": "ok",
        "detail": "every recorded run is counted and in the day's log",
        "pending_repairs": [],
    }
    assert json.loads(health().body)["checks"]["recording"]["status"] == "ok"
    run()  # a third run finds nothing to repair: nothing is appended or counted twice
    assert day_log(container).count(f"Run {deferred.run_id} finished") == 1


def test_job_stats_that_cannot_be_written_are_counted_once_by_the_next_run(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    proxy.plan("busy", times=50, match=TARGETS["stats_write"])  # every try of the SDK and of the app

    deferred = run()

    assert deferred.status == "success", deferred.error
    assert deferred.recording is not None and deferred.recording.missing == ["job_stats"]
    container = direct(azurite, proxied)
    assert f"Run {deferred.run_id} finished" in day_log(container)  # its lines went in; only the counters wait
    assert json.loads(api.status().body)["recording"]["pending_repairs"] == [
        {"run_id": deferred.run_id, "missing": ["job_stats"]}
    ]
    proxy.clear()

    repairing = run()

    assert_exactly_once(container, [deferred, repairing])
    assert stored_stats(container).total_runs == 2


def test_a_run_that_cannot_take_the_lock_says_so_in_its_lines_and_in_health(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    run()
    puts = len(le.puts)
    proxy.plan("busy", times=50, match=TARGETS["lease"])

    lost = run()

    assert lost.status == "failed" and "while taking the lock" in (lost.error or "")
    assert lost.recording is not None and "run_record" in lost.recording.missing
    assert len(le.puts) == puts  # nothing is sent without the lock
    assert any(
        r.levelname == "ERROR" and f"Run {lost.run_id} could not record itself" in r.getMessage()
        for r in caplog.records
    )
    proxy.clear()
    checked = json.loads(health().body)
    assert checked["status"] == "degraded"
    assert checked["checks"]["recording"]["unrecorded_run"] == lost.run_id
    assert "storage trouble" in checked["reason"]


def test_a_lease_granted_while_every_answer_was_lost_is_given_back_so_the_next_run_is_not_skipped(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    run()
    # The first try is granted and its answer lost; its two SDK retries and the app's two more tries (3 each) refused.
    proxy.plan("reset_after", match=TARGETS["lease"])
    proxy.plan("busy", times=8, match=TARGETS["lease"])

    lost = run()

    assert proxy.pending() == 0
    assert lost.status == "failed" and "while taking the lock" in (lost.error or "")
    container = direct(azurite, proxied)
    assert lease_state(container) != "leased"  # given back by the lease id every try proposed
    assert run().status == "success"  # not `skipped` by a lease nobody knew it held


def test_counters_lost_before_an_outage_of_days_are_written_by_the_first_run_after_it(
    proxied: dict[str, str], proxy: FaultProxy, azurite: Azurite, leadpier: FakeLeadPier, le: FakeLE,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run()  # a complete look at the runs is noted in job_stats.json
    proxy.plan("busy", times=50, match=TARGETS["stats_write"])
    deferred = run()
    assert deferred.recording is not None and deferred.recording.missing == ["job_stats"]
    proxy.clear()
    later = datetime.now(UTC) + timedelta(days=4)  # nothing ran meanwhile: its record is four UTC days back
    with use_timing(replace(timing(), clock=lambda: later)):
        after = run()

        container = direct(azurite, proxied)
        assert after.run_id.startswith(f"{later:%Y%m%d}")
        assert stored_stats(container).counted_runs.get(deferred.run_id) == "success"
        assert stored_stats(container).total_runs == 3
