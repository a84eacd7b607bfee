"""Hostile content from the upstreams, served by the stand-ins themselves: a lying count, pages without end, huge text,
text that imitates the log's own lines or drives a terminal, and login tokens that cannot be sent or never expire."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from datetime import timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.__main__ import main as cli
from sync_core.state.records import LeadPierSession, utcnow
from sync_core.upstream.leadpier_auth import SESSION_MAX_AGE
from sync_core.web import api
from tests.conftest import LEADPIER_PASSWORD
from tests.faults.conftest import DAY, blob_text, day_log, state, sync

MIB = 1024 * 1024
FORGED = "2026-02-13 23:59:59,999 - sync_core.pipeline - INFO - Run FORGED finished: success"
# A line as the app writes it: time, logger, level, message; nothing else may start a line of the day's log.
APP_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - sync_core(\.\w+)* - (INFO|WARNING|ERROR) - ")
STORED_CEILING = 64 * 1024  # what one run may add to any stored document, whatever the upstreams sent


def _rows(count: int) -> list[dict[str, Any]]:
    return [{"source": f"mta_0213-lbe-e{i + 1}", "visitors": 10, "totalLeads": 1} for i in range(count)]


def _log_lines_are_the_apps(log: str) -> None:
    assert "\x1b" not in log and "\x07" not in log
    for line in log.splitlines():
        assert APP_LINE.match(line), f"a line the app did not write: {line[:160]!r}"
        assert not line.startswith(FORGED)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "100")
    monkeypatch.setenv("LEADPIER_CONCURRENCY", "4")


# -- paging: what arrives, not what LeadPier claims -------------------------------------------------------------


def test_a_huge_claimed_count_reads_only_the_pages_that_arrive(small_pages, leadpier: FakeLeadPier, le: FakeLE) -> None:
    leadpier.set_rows(DAY, _rows(250))
    leadpier.claimed_count = 1_000_000_000
    record = sync()
    assert record.status == "success", record.error
    assert record.fetched_rows == 250 and len(le.received_days()[DAY.isoformat()]) == 250
    # Page 3 is short: the end of the day. At most one window of pages past it was ever asked for.
    assert len(leadpier.stats_requests) <= 3 + 4


def test_pages_without_end_stop_at_the_rows_ceiling(
    small_pages, monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    monkeypatch.setenv("LEADPIER_MAX_ROWS_PER_DAY", "500")
    leadpier.claimed_count = 1_000_000_000
    leadpier.endless_pages = True
    record = sync()
    assert record.status == "failed"
    assert record.error == (
        "LeadPier statistics for 2026-02-13: more than 500 rows arrived (LEADPIER_MAX_ROWS_PER_DAY; "
        "LeadPier claimed 1000000000); nothing of the day was sent"
    )
    assert le.puts == []
    assert len(leadpier.stats_requests) <= 6 + 4  # the ceiling's pages, one more, and the window in flight


def test_a_day_of_exactly_the_ceiling_is_read_whole(
    small_pages, monkeypatch: pytest.MonkeyPatch, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    monkeypatch.setenv("LEADPIER_MAX_ROWS_PER_DAY", "300")
    leadpier.set_rows(DAY, _rows(300))
    record = sync()
    assert record.status == "success", record.error
    assert len(le.received_days()[DAY.isoformat()]) == 300


# -- text: cut where it is kept, never where it is sent -----------------------------------------------------------


def test_megabyte_sources_are_cut_in_what_is_kept_and_sent_whole(
    env, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    sources = [f"{i:02d}-" + "x" * (MIB - 3) for i in range(20)]
    leadpier.set_rows(DAY, [{"source": s, "visitors": 10 if i % 2 else "not a number"} for i, s in enumerate(sources)])
    record = sync()
    assert record.status == "warning" and record.invalid_rows == 10
    # The data is LE's: every code goes whole.
    assert sorted(len(r["campaign_code"]) for r in le.received_days()[DAY.isoformat()]) == [MIB] * 10
    # What the app keeps about it is cut, with the original length said.
    assert all(s.endswith(f"...[cut, {MIB} characters]: visitors: 'not a number' is not a number")
               for s in record.invalid_samples)  # fmt: skip
    assert all(len(code) <= 200 for codes in record.unmatched_codes.values() for code in codes)
    assert all(len(error) <= 500 for error in record.le_errors)
    stored = {b.name: b.size for b in blob_container.list_blobs()}
    for name, size in stored.items():
        if name != "locks/sync.lock":
            assert size < STORED_CEILING, f"{name} is {size} bytes"
    assert len(stored) == 6  # the session, a run record, job_stats.json, the day's log, the day's summary, the lock


def test_a_record_kept_before_the_bounds_is_bounded_when_read(env, blob_container: ContainerClient) -> None:
    record = sync()
    name = next(b.name for b in blob_container.list_blobs(name_starts_with="runs/"))
    document = json.loads(blob_text(blob_container, name))
    document.update(error="x" * MIB, le_errors=["e" * MIB] * 80, invalid_samples=["s\n" * MIB] * 30)
    blob_container.upload_blob(name, json.dumps(document), overwrite=True)
    shown = state().load_run(record.run_id)
    assert shown is not None
    assert len(shown.model_dump_json()) < STORED_CEILING
    assert len(shown.le_errors) == 50 and len(shown.invalid_samples) == 20
    assert "\n" not in shown.invalid_samples[0]


# -- log lines: outside text can neither start a line nor drive a terminal -----------------------------------------


def test_forged_lines_from_a_row_and_from_le_stay_inside_one_line(
    env, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(
        DAY,
        [{"source": f"mta_0213-lbe-e1\n{FORGED}", "visitors": "x"}, {"source": "mta_0213-lbe-e2", "visitors": 5}],
    )
    le.respond = {"success": False, "message": f"refused\n{FORGED}\x1b]0;owned\x07\x1b[2J", "errors": [f"e\r{FORGED}"]}
    record = sync()
    assert record.status == "warning"
    log = day_log(blob_container)
    _log_lines_are_the_apps(log)
    assert f"source mta_0213-lbe-e1\\n{FORGED}" in log  # still readable, on the line that reports the row
    assert record.error == f"LE did not accept 2026-02-13: refused\\n{FORGED}\\x1b]0;owned\\x07\\x1b[2J"
    assert record.le_errors == [f"e\\r{FORGED}", f"2026-02-13: refused\\n{FORGED}\\x1b]0;owned\\x07\\x1b[2J"]


def test_a_forged_error_code_from_leadpier_stays_inside_one_line(
    env, leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.faults.add("stats", status=200, body={"errorCode": f"BUSY\n{FORGED}\x1b[2J", "data": None})
    record = sync()
    assert record.status == "failed"
    assert record.error is not None and "\n" not in record.error and "\x1b" not in record.error
    _log_lines_are_the_apps(day_log(blob_container))


def test_the_cli_never_prints_a_control_character_from_a_log(env, blob_container: ContainerClient) -> None:
    sync()
    name = next(b.name for b in blob_container.list_blobs(name_starts_with="logs/"))
    # A line written by an older version, before outside text was escaped.
    blob_container.get_blob_client(name).append_block(f"{FORGED} \x1b]0;owned\x07\x1b[2J\n".encode())
    day = re.search(r"(\d{4})(\d\d)(\d\d)", name)
    assert day is not None
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert cli(["logs", "--lines", "5", "--date", "-".join(day.groups())]) == 0
    assert "\x1b" not in printed.getvalue() and "\x07" not in printed.getvalue()
    assert "\\x1b]0;owned\\x07" in printed.getvalue()


def test_logs_shows_an_old_megabyte_line_cut_and_escaped(env, blob_container: ContainerClient) -> None:
    sync()
    name = next(b.name for b in blob_container.list_blobs(name_starts_with="logs/"))
    blob_container.get_blob_client(name).append_block(f"{FORGED} \x1b[2J{'x' * MIB}\n".encode())
    day = re.search(r"(\d{4})(\d\d)(\d\d)", name)
    assert day is not None
    answer = api.logs({"lines": "3", "date": "-".join(day.groups())})
    last = json.loads(answer.body)["logs"][-1]
    assert len(last) == 4096 and last.endswith(f"...[cut, {len(FORGED) + 5 + MIB} characters]")
    assert "\x1b" not in last and last.startswith(f"{FORGED} \\x1b[2J")


def test_unmatched_codes_are_summed_up_in_one_line_per_day(env, leadpier: FakeLeadPier, blob_container) -> None:
    leadpier.set_rows(DAY, [{"source": f"odd-code-{i}", "visitors": 1} for i in range(500)])
    record = sync(dry_run=True)
    assert record.unmatched_counts == {"invalid_format": 500}
    unmatched_lines = [line for line in day_log(blob_container).splitlines() if "unmatched" in line.lower()]
    assert len(unmatched_lines) == 2  # the day's summary and the run's last line
    assert "500 campaign codes unmatched, sent anyway (LE decides): invalid_format 500 (e.g. " in unmatched_lines[0]


def test_only_the_first_invalid_rows_of_a_run_get_a_line_each(env, leadpier: FakeLeadPier, blob_container) -> None:
    leadpier.set_rows(DAY, [{"source": f"mta_0213-lbe-e{i}", "visitors": "x"} for i in range(1, 301)])
    record = sync(dry_run=True)
    assert record.invalid_rows == 300
    log = day_log(blob_container)
    assert log.count("Invalid row left out") == 20
    assert "2026-02-13: 280 more invalid rows left out (only the first 20 of a run are logged one by one)" in log


# -- the session heals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "tok en", "\u00e9t\u00e9", "a" * 9000, ""])
def test_a_token_that_cannot_be_sent_fails_the_login_and_is_not_stored(
    env, leadpier: FakeLeadPier, blob_container: ContainerClient, token: str
) -> None:
    leadpier.login_token = token
    record = sync()
    assert record.status == "failed"
    assert record.error == (
        f"LeadPier login failed: the token it answered ({len(token)} characters) cannot be sent in a header "
        "(only visible ASCII, at most 8192 characters); it was not stored"
    )
    assert not blob_container.get_blob_client("source.json").exists()
    leadpier.login_token = None
    assert sync().status == "success"  # the next run logs in again on its own
    assert len(leadpier.login_requests) == 2


def test_a_stored_token_that_cannot_be_sent_is_never_used(env, leadpier: FakeLeadPier) -> None:
    now = utcnow()
    bad = LeadPierSession(token="abc\r\nX-Injected: 1", last_login_time=now, expires_at=now + timedelta(hours=1))
    state().save_session(bad, None)
    record = sync()
    assert record.status == "success", record.error
    assert leadpier.logins == 1
    stored, _ = state().load_session()
    assert stored is not None and stored.token == leadpier.issued_tokens[-1]


def test_a_token_that_claims_to_live_for_ever_is_trusted_for_a_day(env, leadpier: FakeLeadPier) -> None:
    leadpier.token_lifetime_s = 250_000_000_000 - 1_800_000_000  # about the year 9900
    assert sync().status == "success"
    stored, _ = state().load_session()
    assert stored is not None
    assert stored.expires_at <= stored.last_login_time + SESSION_MAX_AGE


def test_an_old_session_past_a_day_logs_in_again_whatever_its_expiry(env, leadpier: FakeLeadPier) -> None:
    assert sync().status == "success"
    stored, _ = state().load_session()
    assert stored is not None
    aged = stored.model_copy(
        update={"last_login_time": utcnow() - timedelta(hours=25), "expires_at": utcnow() + timedelta(days=3650)}
    )
    state().save_session(aged, state().load_session()[1])
    assert sync().status == "success"
    assert leadpier.logins == 2


def test_no_secret_reaches_a_blob_or_the_log_when_the_upstreams_misbehave(
    env, leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient
) -> None:
    leadpier.login_token = "secret-token\r\nX-Injected: 1"
    sync()
    leadpier.login_token = None
    le.respond = {"success": False, "message": f"no\n{FORGED}"}
    sync()
    for blob in blob_container.list_blobs():
        if blob.name in ("source.json", "locks/sync.lock"):
            continue
        text = blob_text(blob_container, blob.name)
        assert LEADPIER_PASSWORD not in text and "secret-token" not in text
        assert not any(token in text for token in leadpier.issued_tokens)
    _log_lines_are_the_apps(day_log(blob_container))
