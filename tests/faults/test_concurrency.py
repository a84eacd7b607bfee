"""Runs in separate processes (`python -m sync_core sync`): one lock holder, skipped others, exact counters;
a run killed with SIGKILL loses its lease and the next run proceeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.settings import load_settings
from sync_core.state.lock import LEASE_SECONDS
from sync_core.web.status import status_document
from tests.faults.conftest import DAY, blob_text, expected_records, job_stats, sent_days, state, sync, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4


def _spawn(**extra_env: str) -> subprocess.Popen[str]:
    environ = {**os.environ, **extra_env, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "sync_core", "sync", "--date", DAY.isoformat()],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_runs_started_at_once_in_separate_processes(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]], blob_container: ContainerClient
) -> None:
    # The winner's PUT is held long enough that every other process tries the lock while it is taken.
    le.faults.add("put", delay_s=8)

    children = [_spawn(HTTP_TIMEOUT_SECONDS="20") for _ in range(PROCESSES)]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=120)
        outcomes.append((child.returncode, json.loads(out), err))

    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0] + [3] * (PROCESSES - 1), [err[-2000:] for _, _, err in outcomes]
    printed = sorted(record["status"] for _, record, _ in outcomes)
    assert printed == ["skipped"] * (PROCESSES - 1) + ["success"]
    assert all(r["error"] == "already running" for _, r, _ in outcomes if r["status"] == "skipped")
    # Exactly one process talked to the upstreams.
    assert len(le.puts) == 1
    assert len(leadpier.login_requests) == 1
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    stats = job_stats()
    assert (stats.total_runs, stats.successful_runs, stats.failed_runs, stats.skipped_runs) == (1, 1, 0, PROCESSES - 1)
    stored = [json.loads(blob_text(blob_container, b.name))["status"] for b in blob_container.list_blobs("runs/")]
    assert sorted(stored) == printed
    assert not state().lock_is_held()


def test_cli_exit_codes_follow_the_run_status(env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE) -> None:
    le.faults.add("put", status=500, times=4, headers={"Retry-After": "0"})
    failed = _spawn()
    out, _ = failed.communicate(timeout=60)
    assert failed.returncode == 1
    assert json.loads(out)["status"] == "failed"

    ok = _spawn()
    out, _ = ok.communicate(timeout=60)
    assert ok.returncode == 0
    assert json.loads(out)["status"] == "success"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_run_killed_mid_run_loses_its_lease_and_the_next_run_proceeds(
    env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, rows: list[dict[str, Any]]
) -> None:
    assert sync().status == "success"  # so /status has a last execution to show
    le.faults.add("put", delay_s=120)  # the child sits in its PUT until it is killed
    child = _spawn(HTTP_TIMEOUT_SECONDS="150")
    try:
        wait_for(lambda: len(le.puts) == 2, "the child run to send its PUT", timeout_s=60)
        assert state().lock_is_held()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    settings = load_settings()
    document = status_document(settings, state())
    assert document.last_execution is not None and document.last_execution.currently_running is True
    # While the dead run's lease lasts, a new run is skipped rather than run twice.
    assert sync().status == "skipped"

    # The lease lapses by itself within its 30 s; nothing renews it any more.
    end = time.monotonic() + LEASE_SECONDS + 15
    while state().lock_is_held():
        assert time.monotonic() < end, "the killed run's lease never lapsed"
        time.sleep(0.5)

    document = status_document(settings, state())
    assert document.last_execution is not None and document.last_execution.currently_running is False
    record = sync()
    assert record.status == "success", record.error
    assert len(sent_days(le)[DAY.isoformat()]) == expected_records(rows)
    document = status_document(settings, state())
    assert document.last_execution is not None
    assert document.last_execution.currently_running is False
    assert document.last_execution.run_id == record.run_id
    stats = job_stats()
    assert (stats.total_runs, stats.successful_runs, stats.skipped_runs) == (2, 2, 1)
