"""The run lock under trouble: a lease taken over mid-run, a renewal that cannot reach storage."""

from __future__ import annotations

from typing import Any

import pytest
from azure.storage.blob import BlobLeaseClient, ContainerClient

import sync_core.state.lock as lock_module
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.errors import LockLost

from .conftest import Background, assert_recovered, blob_text, state, wait_for


def test_a_run_whose_lease_is_taken_over_stops_before_sending_and_records_failed(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    leadpier: FakeLeadPier,
    le: FakeLE,
    blob_container: ContainerClient,
    rows: list[dict[str, Any]],
) -> None:
    # Renew often, so the renewal that finds the lease gone happens while page 1 is still on the wire.
    monkeypatch.setattr(lock_module, "RENEW_EVERY_SECONDS", 0.1)
    leadpier.faults.add("stats", delay_s=1.5)
    run = Background()
    run.start()
    wait_for(state().lock_is_held, "the run to take the lock")
    lock_blob = blob_container.get_blob_client(lock_module.LOCK_BLOB)
    BlobLeaseClient(lock_blob).break_lease(lease_break_period=0)
    intruder = lock_blob.acquire_lease(lease_duration=15)  # another run, as after a lapse
    record = run.result()

    assert record.status == "failed"
    assert "lease" in (record.error or "")
    assert le.puts == []  # nothing sent once another run may be sending
    stored = blob_text(blob_container, f"runs/{record.run_id[:8]}/{record.run_id}.json")
    assert '"status": "failed"' in stored
    assert state().lock_is_held()  # the intruder's lease was left alone, not released by the stopped run
    intruder.release()
    assert_recovered(le, leadpier, rows)


def test_a_lease_not_renewed_in_time_counts_as_lost_even_if_renewal_hangs(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # check() judges by the time since the last renewal, not by the renewal thread (which a slow storage call can
    # hold up past the lease's end): shrink the lease so "now" is already past the safe window.
    lock = state().lock()
    assert lock.try_acquire()
    lock.check()  # just taken: fine
    monkeypatch.setattr(lock_module, "LEASE_SECONDS", lock_module.RENEW_EVERY_SECONDS)
    with pytest.raises(LockLost, match="not renewed"):
        lock.check()
    lock.release()
