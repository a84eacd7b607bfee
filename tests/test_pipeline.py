"""Whole sync runs against Azurite and the loopback LeadPier and LE: what LE receives and what the blobs say."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.storage.blob import ContainerClient

from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.errors import LockBusy
from sync_core.rules.days import day_range
from sync_core.run.pipeline import RunRequest, days_to_report, run_sync
from sync_core.services import timing, use_timing
from sync_core.settings import load_settings
from sync_core.state.records import utcnow
from sync_core.state.store import StateStore
from sync_core.web.status import status_document

IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 2, 13)
CENT = Decimal("0.01")
LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - sync_core\.[\w.]+ - (INFO|WARNING|ERROR) - .+$")
RUN_RECORD_FIELDS = {
    "run_id", "trigger", "started_at", "finished_at", "duration_ms", "status", "report_dates", "fetched_rows",
    "sent_records", "invalid_rows", "matched_records", "unmatched_records", "unmatched_codes", "le_errors", "error",
}  # fmt: skip


# --------------------------------------------------------------------------- helpers


def run(**request: Any) -> Any:
    return run_sync(RunRequest(**{"trigger": "cli", **request}))


def blob_json(container: ContainerClient, name: str) -> dict[str, Any]:
    return dict(json.loads(container.download_blob(name).readall()))


def job_stats(container: ContainerClient) -> dict[str, Any]:
    return blob_json(container, "job_stats.json")


def run_blob(container: ContainerClient, record: Any) -> dict[str, Any]:
    day = record.started_at.astimezone(UTC).strftime("%Y%m%d")
    return blob_json(container, f"runs/{day}/{record.run_id}.json")


def log_text(container: ContainerClient, record: Any) -> str:
    day = record.started_at.astimezone(IST).strftime("%Y%m%d")
    return container.download_blob(f"logs/scheduler_{day}.log").readall().decode()


def every_blob(container: ContainerClient) -> dict[str, bytes]:
    return {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}


def today_ist() -> date:
    return utcnow().astimezone(IST).date()


def _number(value: Any) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal(0)
    return Decimal(str(value).replace(",", "").strip())


def expected_le_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LE field mapping table, written out on its own (in LeadPier's order: source descending)."""
    out = []
    for row in sorted(rows, key=lambda r: str(r.get("source") or ""), reverse=True):
        visitors = _number(row.get("visitors"))
        if visitors <= 0:
            continue
        revenue = _number(row.get("totalRevenue"))

        def whole(name: str, row: dict[str, Any] = row) -> int:
            return int(_number(row.get(name)).quantize(Decimal(1), ROUND_HALF_UP))

        def cents(value: Decimal) -> float:
            return float(value.quantize(CENT, ROUND_HALF_UP))

        out.append({
            "campaign_code": row["source"], "clicks": whole("visitors"), "leads": whole("totalLeads"),
            "lead_percent": cents(_number(row.get("conversionRate"))), "sales": whole("soldLeads"),
            "sale_percent": cents(_number(row.get("soldRate"))), "revenue": cents(revenue),
            "epc": cents(_number(row.get("EPL"))), "rpc": cents(revenue / visitors),
        })  # fmt: skip
    return out


EDGE_ROWS: list[dict[str, Any]] = [
    {"source": "zz-b_0213-lbe-e1", "visitors": 200, "totalLeads": 3, "soldLeads": 1, "totalRevenue": 1.005,
     "conversionRate": "2.675", "soldRate": 33.335, "EPL": 0.125, "EPV": 0.01},
    {"source": "zz_0213-sle-e2", "visitors": "3", "totalLeads": "2", "soldLeads": None, "totalRevenue": "10"},
    {"source": "zz_0213-rct-e3", "visitors": 0, "totalLeads": 4, "totalRevenue": 9.99},
    {"source": "zz_0213-pfe-e4", "visitors": -2, "totalRevenue": 1},
    {"source": "zz_0213-afw-e5", "visitors": 7},
]  # fmt: skip


def test_edge_rows_have_the_hand_computed_figures() -> None:
    # The independent expectation above, checked once against figures worked out by hand.
    by_code = {r["campaign_code"]: r for r in expected_le_records(EDGE_ROWS)}

    assert set(by_code) == {"zz-b_0213-lbe-e1", "zz_0213-sle-e2", "zz_0213-afw-e5"}
    assert by_code["zz-b_0213-lbe-e1"] == {
        "campaign_code": "zz-b_0213-lbe-e1", "clicks": 200, "leads": 3, "lead_percent": 2.68, "sales": 1,
        "sale_percent": 33.34, "revenue": 1.01, "epc": 0.13, "rpc": 0.01,
    }  # fmt: skip
    assert by_code["zz_0213-sle-e2"]["rpc"] == 3.33 and by_code["zz_0213-sle-e2"]["sales"] == 0


# --------------------------------------------------------------------------- what LE receives


def test_every_page_is_read_and_le_receives_the_exact_day(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "50")
    rows = generate_rows(175, DAY, seed=7) + EDGE_ROWS
    leadpier.set_rows(DAY, rows)

    record = run(dates=[DAY])

    assert record.status == "success", record.error
    assert sorted(r["json"]["offset"] for r in leadpier.stats_requests) == [0, 50, 100, 150]
    assert len(le.puts) == 1
    assert le.puts[0]["body"] == {"report_date": "2026-02-13", "data": expected_le_records(rows)}
    assert record.fetched_rows == 180
    assert record.sent_records == len(expected_le_records(rows))


def test_a_day_without_rows_sends_nothing_and_succeeds(sync_env: dict[str, str], le: FakeLE) -> None:
    record = run(dates=[DAY])

    assert record.status == "success" and record.sent_records == 0
    assert le.puts == []


def test_a_range_backfill_sends_each_day_once(sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE) -> None:
    days = day_range(DAY, DAY + timedelta(days=2))
    for i, day in enumerate(days):
        leadpier.set_rows(day, [{"source": f"mta_{day:%m%d}-lbe-e{i}", "visitors": 10 + i}])

    record = run(dates=days)

    assert record.status == "success"
    assert record.report_dates == ["2026-02-13", "2026-02-14", "2026-02-15"]
    assert [p["body"]["report_date"] for p in le.puts] == ["2026-02-13", "2026-02-14", "2026-02-15"]
    assert [p["body"]["data"][0]["clicks"] for p in le.puts] == [10, 11, 12]
    assert [r["json"]["periodFrom"] for r in leadpier.stats_requests] == record.report_dates


def test_a_single_day_backfill_touches_only_that_day(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 5}])

    record = run(trigger="manual", dates=[DAY])

    assert record.report_dates == ["2026-02-13"]
    assert {r["json"]["periodFrom"] for r in leadpier.stats_requests} == {"2026-02-13"}
    assert list(le.received_days()) == ["2026-02-13"]


def test_a_range_is_at_most_31_days_and_in_order() -> None:
    assert len(day_range(date(2026, 1, 1), date(2026, 1, 31))) == 31
    with pytest.raises(ValueError, match="31"):
        day_range(date(2026, 1, 1), date(2026, 2, 1))
    with pytest.raises(ValueError):
        day_range(date(2026, 1, 2), date(2026, 1, 1))


def test_a_dry_run_sends_nothing_but_records_the_run(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, generate_rows(30, DAY))

    record = run(dates=[DAY], dry_run=True)

    assert le.puts == []
    assert record.status == "success" and record.dry_run is True
    assert record.fetched_rows == 30 and record.sent_records == 0
    saved = run_blob(blob_container, record)
    assert saved["dry_run"] is True and saved["fetched_rows"] == 30
    assert job_stats(blob_container)["total_runs"] == 1
    assert "Dry run: nothing sent to LE for 2026-02-13" in log_text(blob_container, record)


@pytest.mark.parametrize(("asked", "setting"), [(True, None), (None, "true"), (None, "1")])
def test_a_dry_run_that_fails_on_its_settings_is_still_recorded_as_a_dry_run(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, le: FakeLE, blob_container: ContainerClient,
    asked: bool | None, setting: str | None,
) -> None:  # fmt: skip
    monkeypatch.setenv("SYNC_TIMEZONE", "Mars/Base")
    if setting:
        monkeypatch.setenv("SYNC_DRY_RUN", setting)

    record = run(dates=[DAY], dry_run=asked)

    assert record.status == "failed" and "SYNC_TIMEZONE" in (record.error or "")
    assert record.dry_run is True
    assert run_blob(blob_container, record)["dry_run"] is True
    assert le.puts == []


def test_sync_dry_run_setting_makes_every_run_dry(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    monkeypatch.setenv("SYNC_DRY_RUN", "true")
    leadpier.set_rows(DAY, generate_rows(10, DAY))

    assert run(dates=[DAY]).dry_run is True
    assert le.puts == []


def test_invalid_rows_are_counted_logged_with_their_source_and_make_a_warning(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    rows: list[dict[str, Any]] = [
        {"source": "mta_0213-lbe-e1", "visitors": 10},
        {"source": "mta_0213-lbe-e2", "visitors": 10, "totalLeads": "n/a"},
        {"visitors": 3},
        {"source": "", "visitors": 3},
    ]
    leadpier.set_rows(DAY, rows)

    record = run(dates=[DAY])

    assert record.status == "warning"
    assert record.invalid_rows == 3 and record.sent_records == 1
    assert [r["campaign_code"] for r in le.puts[0]["body"]["data"]] == ["mta_0213-lbe-e1"]
    assert any(s.startswith("mta_0213-lbe-e2: totalLeads") for s in record.invalid_samples)
    log = log_text(blob_container, record)
    assert re.search(r" - WARNING - Invalid row left out \(totalLeads: .*\): source mta_0213-lbe-e2$", log, re.M)
    assert log.count("source <no source>") == 2
    stats = job_stats(blob_container)
    assert (stats["total_runs"], stats["successful_runs"], stats["failed_runs"]) == (1, 0, 1)


def test_campaign_code_reasons_are_recorded_with_samples_and_still_sent(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    rows = [
        {"source": "mta-b_0213-lbe-e2", "visitors": 10},
        {"source": "vr-b-oZaR5m-t-mlYq6o-0213", "visitors": 10},
        {"source": "organic-abc", "visitors": 10},
        {"source": "mta_0213-xyz-e1", "visitors": 10},
        {"source": "spg_0213-nope-e1", "visitors": 0},  # no visitors: not sent, not counted
    ]
    leadpier.set_rows(DAY, rows)

    record = run(dates=[DAY])

    assert record.status == "success"
    assert record.unmatched_counts == {"invalid_format": 2, "unknown_domain": 1}
    assert {k: sorted(v) for k, v in record.unmatched_codes.items()} == {
        "invalid_format": ["organic-abc", "vr-b-oZaR5m-t-mlYq6o-0213"], "unknown_domain": ["mta_0213-xyz-e1"],
    }  # fmt: skip
    sent = sorted(r["campaign_code"] for r in le.puts[0]["body"]["data"])
    assert sent == ["mta-b_0213-lbe-e2", "mta_0213-xyz-e1", "organic-abc", "vr-b-oZaR5m-t-mlYq6o-0213"]
    assert (record.matched_records, record.unmatched_records) == (1, 3)  # LE's own counts
    assert len(record.le_errors) == 3
    assert run_blob(blob_container, record)["unmatched_codes"] == record.unmatched_codes
    # One line for the day: the count by reason and a few examples, not a line per code.
    text = log_text(blob_container, record)
    assert "2026-02-13: 3 campaign codes unmatched, sent anyway (LE decides): invalid_format 2 (e.g. " in text
    assert "unknown_domain 1 (e.g. mta_0213-xyz-e1)" in text


def test_sync_domain_codes_adds_and_removes_domains_for_matching(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier
) -> None:
    monkeypatch.setenv("SYNC_DOMAIN_CODES", '{"xyz": "xyz.example.com", "lbe": null}')
    leadpier.set_rows(DAY, [{"source": "mta_0213-xyz-e1", "visitors": 1}, {"source": "mta_0213-lbe-e1", "visitors": 1}])

    record = run(dates=[DAY])

    assert record.unmatched_codes == {"unknown_domain": ["mta_0213-lbe-e1"]}


def test_le_answering_success_false_makes_a_warning_with_its_message(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])
    with FakeLE(respond={"success": False, "message": "maintenance window"}) as refusing:
        monkeypatch.setenv("LE_API_URL", refusing.url + "/le_api.php")
        record = run(dates=[DAY])

    assert record.status == "warning"
    assert "maintenance window" in (record.error or "")
    assert "2026-02-13: maintenance window" in record.le_errors
    assert job_stats(blob_container)["failed_runs"] == 1
    assert job_stats(blob_container).get("last_finalized_day") is None


# --------------------------------------------------------------------------- report days and finalizing


def test_report_days_are_yesterday_and_today_until_yesterday_is_finalized() -> None:
    now = datetime(2026, 2, 13, 20, 0, tzinfo=UTC)  # 01:30 on the 14th in Kolkata

    assert days_to_report(now, IST, None) == [date(2026, 2, 13), date(2026, 2, 14)]
    assert days_to_report(now, IST, "2026-02-12") == [date(2026, 2, 13), date(2026, 2, 14)]
    assert days_to_report(now, IST, "2026-02-13") == [date(2026, 2, 14)]
    assert days_to_report(now, IST, "garbage") == [date(2026, 2, 13), date(2026, 2, 14)]
    assert days_to_report(now, ZoneInfo("UTC"), None) == [date(2026, 2, 12), date(2026, 2, 13)]


def test_the_first_run_syncs_yesterday_and_today_and_then_only_today(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    today = today_ist()
    yesterday = today - timedelta(days=1)
    leadpier.set_rows(yesterday, [{"source": "mta_0101-lbe-e1", "visitors": 1}])
    leadpier.set_rows(today, [{"source": "mta_0101-lbe-e2", "visitors": 2}])

    first = run(trigger="timer")
    finalized_after_first = job_stats(blob_container)["last_finalized_day"]
    second = run(trigger="timer")

    assert first.report_dates == [yesterday.isoformat(), today.isoformat()]
    assert finalized_after_first == yesterday.isoformat()  # today has not ended: never finalized yet
    assert second.report_dates == [today.isoformat()]
    assert [p["body"]["report_date"] for p in le.puts] == [yesterday.isoformat(), today.isoformat(), today.isoformat()]
    assert job_stats(blob_container)["last_finalized_day"] == yesterday.isoformat()


def test_dry_runs_never_finalize_a_day(sync_env: dict[str, str], le: FakeLE, blob_container: ContainerClient) -> None:
    today = today_ist()

    run(trigger="timer", dry_run=True)
    again = run(trigger="timer", dry_run=True)

    assert again.report_dates == [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    assert job_stats(blob_container).get("last_finalized_day") is None


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_at_midnight_the_day_that_ended_gets_its_final_sync(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    clock = Clock(datetime(2026, 2, 13, 23, 55, tzinfo=IST))
    with use_timing(replace(timing(), clock=clock)):
        for day in ("2026-02-12", "2026-02-13", "2026-02-14"):
            leadpier.set_rows(day, [{"source": "mta_0101-lbe-e1", "visitors": 1}])

        before_midnight = run(trigger="timer")
        clock.now = datetime(2026, 2, 14, 0, 5, tzinfo=IST)
        after_midnight = run(trigger="timer")
        clock.now = datetime(2026, 2, 14, 0, 15, tzinfo=IST)
        next_slot = run(trigger="timer")

        assert before_midnight.report_dates == ["2026-02-12", "2026-02-13"]
        assert after_midnight.report_dates == ["2026-02-13", "2026-02-14"]
        assert next_slot.report_dates == ["2026-02-14"]
        assert job_stats(blob_container)["last_finalized_day"] == "2026-02-13"
        # The run record's folder is the UTC day of the start; the log's file is the Kolkata day.
        assert {b.name for b in blob_container.list_blobs(name_starts_with="logs/")} == {
            "logs/scheduler_20260213.log", "logs/scheduler_20260214.log",
        }  # fmt: skip
        assert {b.name.split("/")[1] for b in blob_container.list_blobs(name_starts_with="runs/")} == {"20260213"}


def test_a_day_le_refused_is_synced_again_by_the_next_run(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    yesterday = today_ist() - timedelta(days=1)
    leadpier.set_rows(yesterday, [{"source": "mta_0101-lbe-e1", "visitors": 1}])
    with FakeLE(respond={"success": False, "message": "busy"}) as refusing:
        monkeypatch.setenv("LE_API_URL", refusing.url)
        run(trigger="timer")

    monkeypatch.setenv("LE_API_URL", le.url)
    retried = run(trigger="timer")

    assert retried.report_dates[0] == yesterday.isoformat()
    assert yesterday.isoformat() in le.received_days()


# --------------------------------------------------------------------------- the lock


def test_a_run_while_the_lock_is_held_is_skipped_and_counted_apart(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    settings = load_settings()
    holder = StateStore(settings.storage).lock()
    assert holder.try_acquire()
    try:
        record = run(trigger="timer")
    finally:
        holder.release()

    assert (record.status, record.error) == ("skipped", "already running")
    assert leadpier.requests == [] and le.puts == []
    assert run_blob(blob_container, record)["status"] == "skipped"
    stats = job_stats(blob_container)
    assert (stats["skipped_runs"], stats["total_runs"], stats["failed_runs"], stats["successful_runs"]) == (1, 0, 0, 0)
    assert stats.get("last_execution") is None
    assert run(trigger="timer").status == "success"  # released: the next run proceeds


def test_a_queued_backfill_waits_for_the_lock_instead_of_skipping(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    holder = StateStore(load_settings().storage).lock()
    assert holder.try_acquire()
    releaser = threading.Timer(0.5, holder.release)
    releaser.start()
    try:
        record = run(trigger="manual", dates=[DAY], wait_for_lock_s=30)
    finally:
        releaser.join()

    assert record.status == "success"


def test_a_backfill_that_cannot_get_the_lock_is_raised_for_redelivery(sync_env: dict[str, str], le: FakeLE) -> None:
    holder = StateStore(load_settings().storage).lock()
    assert holder.try_acquire()
    try:
        with pytest.raises(LockBusy):
            run(trigger="manual", dates=[DAY], wait_for_lock_s=0.2)
    finally:
        holder.release()
    assert le.puts == []


# --------------------------------------------------------------------------- records, logs, status


def test_the_run_record_blob_holds_every_field_spec_lists(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, generate_rows(20, DAY))

    record = run(dates=[DAY])

    assert re.fullmatch(r"\d{8}T\d{9}Z-[0-9a-f]{6}", record.run_id)
    saved = run_blob(blob_container, record)
    assert set(saved) >= RUN_RECORD_FIELDS
    assert saved["run_id"] == record.run_id and saved["trigger"] == "cli" and saved["status"] == "success"
    assert saved["report_dates"] == ["2026-02-13"] and saved["fetched_rows"] == 20
    for name in ("started_at", "finished_at"):
        assert datetime.fromisoformat(saved[name]).utcoffset() == timedelta(0)
    assert saved["duration_ms"] >= 0 and saved["error"] is None


def test_a_manual_run_with_a_given_id_updates_its_record_rather_than_adding_one(
    sync_env: dict[str, str], blob_container: ContainerClient
) -> None:
    run_id = "20260213T101010123Z-abcdef"
    run(trigger="manual", run_id=run_id, dates=[DAY])
    run(trigger="manual", run_id=run_id, dates=[DAY])

    assert [b.name for b in blob_container.list_blobs(name_starts_with="runs/")] == [f"runs/20260213/{run_id}.json"]


def test_each_run_appends_its_lines_to_the_days_log_in_the_old_format(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])

    first, second = run(dates=[DAY]), run(dates=[DAY])

    day = first.started_at.astimezone(IST).strftime("%Y%m%d")
    blob = blob_container.get_blob_client(f"logs/scheduler_{day}.log")
    assert blob.get_blob_properties().blob_type == "AppendBlob"
    lines = blob.download_blob().readall().decode().splitlines()
    assert lines and all(LINE.match(line) for line in lines), [line for line in lines if not LINE.match(line)]
    assert sum(f"Run {first.run_id} started" in line for line in lines) == 1
    assert sum(f"Run {second.run_id} finished: success" in line for line in lines) == 1
    assert lines.index(next(line for line in lines if second.run_id in line)) > lines.index(
        next(line for line in lines if first.run_id in line)
    )


def test_log_times_are_shown_in_the_service_time_zone(
    sync_env: dict[str, str], blob_container: ContainerClient
) -> None:
    record = run(dates=[DAY])

    first_line = log_text(blob_container, record).splitlines()[0]
    shown = datetime.strptime(first_line.split(",")[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    assert abs(shown - record.started_at) < timedelta(minutes=1)


def test_lines_logged_by_page_threads_stay_with_their_run(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "10")
    leadpier.set_rows(DAY, generate_rows(40, DAY))
    leadpier.faults.add("stats")  # page 1 goes through; the next page's token is refused
    leadpier.faults.add("stats", status=401)

    record = run(dates=[DAY])

    assert record.status in ("success", "warning") and record.fetched_rows == 40
    assert "the token was refused; logging in again" in log_text(blob_container, record)


def test_status_before_the_first_run_and_after_a_success(sync_env: dict[str, str], leadpier: FakeLeadPier) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    now = datetime(2026, 2, 13, 17, 53, 35, tzinfo=UTC)

    before = status_document(settings, store, now=now).model_dump(mode="json")
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}, {"source": "organic-x", "visitors": 1}])
    record = run(dates=[DAY])
    after = status_document(settings, store, now=now).model_dump(mode="json")

    assert before == {
        "scheduler": {"running": True, "schedule": "0 */10 * * * *", "timezone": "Asia/Kolkata",
                      "next_run": "2026-02-13 23:30:00 IST"},
        "job_statistics": {"total_runs": 0, "successful_runs": 0, "failed_runs": 0, "skipped_runs": 0,
                           "success_rate": "N/A"},
        "last_execution": None,
        "unmatched_codes": {},
        "catch_up": {"oldest_unfinalized_day": "2026-02-12", "last_finalized_day": None, "catchup_days": 7,
                     "pending_days": ["2026-02-12"], "beyond_window": [], "backfill": []},
        "recording": {"status": "ok", "detail": "every recorded run is counted and in the day's log",
                      "pending_repairs": []},
    }  # fmt: skip
    assert after["job_statistics"] == {
        "total_runs": 1, "successful_runs": 1, "failed_runs": 0, "skipped_runs": 0, "success_rate": "100.00%",
    }  # fmt: skip
    last = after["last_execution"]
    assert set(last) == {"timestamp", "status", "matched_records", "unmatched_records", "currently_running", "run_id",
                         "duration_ms", "report_dates", "sent_records", "error"}  # fmt: skip
    assert (last["status"], last["run_id"], last["report_dates"]) == ("success", record.run_id, ["2026-02-13"])
    assert (last["sent_records"], last["matched_records"], last["unmatched_records"]) == (2, 1, 1)
    assert last["currently_running"] is False and last["error"] is None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} IST", last["timestamp"])
    assert after["unmatched_codes"] == {"invalid_format": ["organic-x"]}


def test_status_counts_a_warning_as_failed_and_shows_a_held_lock(
    sync_env: dict[str, str], leadpier: FakeLeadPier
) -> None:
    settings = load_settings()
    store = StateStore(settings.storage)
    run(dates=[DAY])
    leadpier.set_rows(DAY, [{"visitors": 1}])
    run(dates=[DAY])
    holder = store.lock()
    assert holder.try_acquire()
    try:
        document = status_document(settings, store)
    finally:
        holder.release()

    assert document.job_statistics.success_rate == "50.00%"
    assert document.job_statistics.failed_runs == 1
    assert document.last_execution is not None and document.last_execution.status == "warning"
    assert document.last_execution.currently_running is True


# --------------------------------------------------------------------------- failures


def test_an_unresolved_key_vault_password_fails_the_run_without_calling_leadpier(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    monkeypatch.setenv("LEADPIER_PASSWORD", "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/pw/)")

    record = run(trigger="timer")

    assert record.status == "failed"
    assert "LEADPIER_PASSWORD" in (record.error or "")
    assert leadpier.requests == [] and le.puts == []
    assert run_blob(blob_container, record)["status"] == "failed"
    assert job_stats(blob_container)["failed_runs"] == 1


def test_a_refused_login_fails_the_run_and_no_secret_lands_in_any_blob(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    monkeypatch.setenv("LEADPIER_PASSWORD", "Wrong-Secret-Password")

    record = run(dates=[DAY])

    assert record.status == "failed"
    assert record.error == "LeadPier login failed: INVALID_CREDENTIALS"
    assert le.puts == []
    for name, content in every_blob(blob_container).items():
        assert b"Wrong-Secret-Password" not in content, name


def test_the_token_is_kept_in_source_json_only(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])
    run(dates=[DAY])

    token = leadpier.issued_tokens[0].encode()
    holders = [name for name, content in every_blob(blob_container).items() if token in content]
    assert holders == ["source.json"]
    assert not any(sync_env["LEADPIER_PASSWORD"].encode() in c for c in every_blob(blob_container).values())


def test_a_leadpier_outage_fails_the_run_and_sends_nothing(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])
    leadpier.faults.add("stats", status=503, headers={"Retry-After": "0"}, times=10)

    record = run(dates=[DAY])

    assert record.status == "failed"
    assert record.error == "LeadPier statistics for 2026-02-13 (offset 0) failed after 4 attempt(s): HTTP 503"
    assert le.puts == []
    assert job_stats(blob_container)["failed_runs"] == 1


def test_a_run_past_its_deadline_fails_and_sends_nothing(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    monkeypatch.setenv("SYNC_RUN_DEADLINE_SECONDS", "1")
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])
    leadpier.faults.add("stats", delay_s=3, times=5)

    record = run(dates=[DAY])

    assert record.status == "failed" and record.error
    assert le.puts == []


def test_corrupt_state_blobs_do_not_stop_the_sync_and_are_rewritten(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    blob_container.create_container()
    blob_container.upload_blob("job_stats.json", b"\x00{{{", overwrite=True)
    blob_container.upload_blob("source.json", b'{"token": 5}', overwrite=True)
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 1}])

    record = run(dates=[DAY])

    assert record.status == "success" and len(le.puts) == 1
    assert job_stats(blob_container)["total_runs"] == 1
    assert blob_json(blob_container, "source.json")["token"] == leadpier.issued_tokens[0]


def test_a_refused_login_ends_the_run_without_trying_the_other_days(
    sync_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    leadpier: FakeLeadPier,
    le: FakeLE,
) -> None:
    monkeypatch.setenv("LEADPIER_PASSWORD", "not-the-password")

    record = run(dates=[DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)])

    assert record.status == "failed"
    assert [d.report_date for d in record.days] == [DAY.isoformat()]  # one refusal, not one per day
    assert len(leadpier.login_requests) == 1
    assert le.puts == []


def test_a_run_stopped_by_its_deadline_keeps_the_totals_of_what_it_did(
    sync_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    leadpier: FakeLeadPier,
    le: FakeLE,
) -> None:
    monkeypatch.setenv("SYNC_RUN_DEADLINE_SECONDS", "2")
    leadpier.set_rows(DAY, [{"source": "mta_0213-lbe-e1", "visitors": 3}, {"source": "mta_0213-lbe-e2", "visitors": 4}])
    # The first day's PUT outlives the deadline (the second day, empty, is fetched while it is on the wire).
    le.faults.add("put", delay_s=4)

    record = run(dates=[DAY, DAY + timedelta(days=1)])

    assert record.status == "failed"
    assert "deadline" in (record.error or "")
    assert record.fetched_rows == 2  # the first day's rows, counted although the run stopped early
    assert [d.report_date for d in record.days] == [DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()]
    assert "no time was left" in (record.days[0].error or "")
