"""`python -m sync_core`: exit codes 0/1/2/3 and the JSON it prints, against Azurite and the loopback upstreams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.__main__ import main
from sync_core.settings import load_settings
from sync_core.state.store import StateStore

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-02-13"
ROWS = [{"source": "mta_0213-lbe-e1", "visitors": 10}, {"source": "organic-x", "visitors": 5}]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exit on bad arguments
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli_process(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "sync_core", *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------- sync


def test_sync_of_a_day_prints_its_run_record_and_exits_0(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier, le: FakeLE,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    leadpier.set_rows(DAY, ROWS)

    code, out, _ = cli(capsys, "sync", "--date", DAY)

    record = json.loads(out)
    assert code == 0
    assert (record["status"], record["trigger"], record["report_dates"]) == ("success", "cli", [DAY])
    assert (record["fetched_rows"], record["sent_records"], record["matched_records"], record["unmatched_records"]) == (
        2,
        2,
        1,
        1,
    )
    assert record["unmatched_codes"] == {"invalid_format": ["organic-x"]}
    assert [p["body"]["report_date"] for p in le.puts] == [DAY]
    assert any(
        b.name.endswith(f"/{record['run_id']}.json") for b in blob_container.list_blobs(name_starts_with="runs/")
    )


def test_a_warning_run_still_exits_0(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier
) -> None:
    leadpier.set_rows(DAY, [*ROWS, {"source": "mta_0213-lbe-e2", "visitors": "lots"}])

    code, out, _ = cli(capsys, "sync", "--date", DAY)

    assert code == 0 and json.loads(out)["status"] == "warning" and json.loads(out)["invalid_rows"] == 1


def test_a_range_syncs_each_day(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], le: FakeLE, leadpier: FakeLeadPier
) -> None:
    for day in ("2026-02-13", "2026-02-14"):
        leadpier.set_rows(day, ROWS)

    code, out, _ = cli(capsys, "sync", "--from", "2026-02-13", "--to", "2026-02-14")

    assert code == 0 and json.loads(out)["report_dates"] == ["2026-02-13", "2026-02-14"]
    assert [p["body"]["report_date"] for p in le.puts] == ["2026-02-13", "2026-02-14"]


def test_dry_run_sends_nothing(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], le: FakeLE, leadpier: FakeLeadPier
) -> None:
    leadpier.set_rows(DAY, ROWS)

    code, out, _ = cli(capsys, "sync", "--date", DAY, "--dry-run")

    assert code == 0 and json.loads(out)["dry_run"] is True and json.loads(out)["fetched_rows"] == 2
    assert le.puts == []


def test_a_failed_run_exits_1_with_its_record(
    sync_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    leadpier: FakeLeadPier,
) -> None:
    monkeypatch.setenv("LEADPIER_PASSWORD", "@Microsoft.KeyVault(VaultName=v;SecretName=pw)")

    code, out, _ = cli(capsys, "sync", "--date", DAY)

    record = json.loads(out)
    assert code == 1 and record["status"] == "failed" and "LEADPIER_PASSWORD" in record["error"]
    assert leadpier.requests == []


def test_a_run_while_the_lock_is_held_exits_3(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier
) -> None:
    holder = StateStore(load_settings().storage).lock()
    assert holder.try_acquire()
    try:
        code, out, _ = cli(capsys, "sync")
    finally:
        holder.release()

    assert code == 3 and json.loads(out)["status"] == "skipped"
    assert leadpier.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--date", "2026-13-01"],
        ["sync", "--date", "yesterday"],
        ["sync", "--from", "2026-01-01", "--to", "2026-02-01"],  # 32 days
        ["sync", "--from", "2026-01-02", "--to", "2026-01-01"],
        ["sync", "--from", "2026-01-01"],
        ["sync", "--date", DAY, "--from", DAY, "--to", DAY],
        ["logs", "--lines", "0"],
        ["logs", "--lines", "1001"],
        ["logs", "--lines", "abc"],
        ["unknown-command"],
        [],
    ],
)
def test_bad_arguments_exit_2_and_run_nothing(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier,
    blob_container: ContainerClient, argv: list[str],
) -> None:  # fmt: skip
    code, out, err = cli(capsys, *argv)

    assert code == 2
    assert out == "" and err
    assert leadpier.requests == [] and not blob_container.exists()


def test_an_impossible_date_is_called_not_a_calendar_date(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier
) -> None:
    code, out, err = cli(capsys, "sync", "--date", "2026-02-30")

    assert code == 2 and out == ""
    assert (
        "'2026-02-30' must be a calendar date (YYYY-MM-DD), and 2026-02-30 is not one: February 2026 has 28 days" in err
    )
    assert leadpier.requests == []


def test_a_day_after_today_is_refused_as_trigger_refuses_it(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier,
    blob_container: ContainerClient,
) -> None:  # fmt: skip
    tomorrow = (datetime.now(ZoneInfo("Asia/Kolkata")).date() + timedelta(days=1)).isoformat()

    single = cli(capsys, "sync", "--date", tomorrow)
    ranged = cli(
        capsys, "sync", "--from", (date.fromisoformat(tomorrow) - timedelta(days=3)).isoformat(), "--to", tomorrow
    )

    for code, out, err in (single, ranged):
        assert code == 2 and out == ""
        assert f"{tomorrow} is after today" in err and "only past days and today can be synced" in err
    assert leadpier.requests == [] and not blob_container.exists()


# --------------------------------------------------------------------------- status and logs


def test_status_prints_the_status_document_before_and_after_a_run(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier
) -> None:
    leadpier.set_rows(DAY, ROWS)

    code_before, before, _ = cli(capsys, "status")
    cli(capsys, "sync", "--date", DAY)
    code_after, after, _ = cli(capsys, "status")

    doc_before, doc_after = json.loads(before), json.loads(after)
    assert (code_before, code_after) == (0, 0)
    assert set(doc_before) == {
        "scheduler",
        "job_statistics",
        "last_execution",
        "unmatched_codes",
        "catch_up",
        "recording",
    }
    assert doc_after["recording"]["status"] == "ok"
    assert doc_before["job_statistics"]["success_rate"] == "N/A" and doc_before["last_execution"] is None
    assert doc_before["scheduler"]["schedule"] == "0 */10 * * * *"
    assert doc_before["scheduler"]["next_run"].endswith(" IST")
    assert doc_after["job_statistics"]["success_rate"] == "100.00%"
    assert doc_after["last_execution"]["status"] == "success"
    assert doc_after["last_execution"]["report_dates"] == [DAY]


def test_logs_prints_the_last_lines_of_the_days_log(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier
) -> None:
    leadpier.set_rows(DAY, ROWS)
    _, out, _ = cli(capsys, "sync", "--date", DAY)
    run_id = json.loads(out)["run_id"]

    code, out, _ = cli(capsys, "logs", "--lines", "1")

    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    assert f"- sync_core.pipeline - INFO - Run {run_id} finished: success" in lines[0]


def test_logs_of_a_day_without_a_log_says_so(sync_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "logs", "--date", "2020-01-01")

    assert code == 0 and out == "" and "No log for 2020-01-01" in err


def test_status_says_the_scheduler_is_stopped_when_the_timer_is_disabled_as_http_status_does(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.functions_helpers import App, body

    monkeypatch.setenv("AzureWebJobs.sync_timer.Disabled", "true")

    code, out, _ = cli(capsys, "status")
    over_http = body(App().get("status", "/status"))

    assert code == 0
    assert json.loads(out)["scheduler"] == over_http["scheduler"]
    assert over_http["scheduler"]["running"] is False and over_http["scheduler"]["next_run"] is None


def test_status_with_bad_settings_exits_1_naming_the_setting(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYNC_TIMEZONE", "Mars/Base")

    code, out, err = cli(capsys, "status")

    assert code == 1 and out == "" and "SYNC_TIMEZONE" in err and "Traceback" not in err


# --------------------------------------------------------------------------- as a process


def test_python_m_sync_core_runs_a_sync_as_a_process(
    sync_env: dict[str, str], tmp_path: Path, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    leadpier.set_rows(DAY, ROWS)

    done = cli_process("sync", "--date", DAY, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "success"
    assert len(le.puts) == 1
    assert "sync_core.pipeline - INFO - Run" in done.stderr  # the run's lines go to stderr, the record to stdout


def test_the_process_reads_local_settings_json_and_exits_2_on_a_bad_date(
    sync_env: dict[str, str], tmp_path: Path, leadpier: FakeLeadPier, le: FakeLE
) -> None:
    leadpier.set_rows(DAY, ROWS)
    env = {k: v for k, v in os.environ.items() if k not in sync_env}
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": sync_env}))

    good = cli_process("sync", "--date", DAY, cwd=tmp_path, env=env)
    bad = cli_process("sync", "--date", "13/02/2026", cwd=tmp_path, env=env)

    assert good.returncode == 0, good.stderr
    assert len(le.puts) == 1
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr and bad.stdout == ""


def test_secrets_never_reach_the_printed_output(
    sync_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    leadpier: FakeLeadPier,
) -> None:
    monkeypatch.setenv("LE_API_KEY", "Cli-Secret-Key")
    leadpier.set_rows(DAY, ROWS)

    _, out, err = cli(capsys, "sync", "--date", DAY)
    printed: Any = out + err

    for secret in ("Cli-Secret-Key", sync_env["LEADPIER_PASSWORD"], leadpier.issued_tokens[0], "AccountKey"):
        assert secret not in printed


def test_relogin_drops_the_stored_session_so_the_run_logs_in_again(
    sync_env: dict[str, str], capsys: pytest.CaptureFixture[str], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    leadpier.set_rows(DAY, ROWS)
    assert cli(capsys, "sync", "--date", DAY)[0] == 0
    assert cli(capsys, "sync", "--date", DAY)[0] == 0
    assert leadpier.logins == 1  # the stored session is reused
    code, out, _ = cli(capsys, "sync", "--date", DAY, "--relogin")
    assert code == 0 and json.loads(out)["status"] == "success"
    assert leadpier.logins == 2
