"""The state store against real Azurite: conditional writes, the lease lock, run records and the day's log."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from azure.storage.blob import ContainerClient
from pydantic import SecretStr

from sandbox.azurite import Azurite
from sync_core.errors import ConcurrentUpdate
from sync_core.settings import AccountUrlTarget, ConnectionStringTarget, StorageTarget
from sync_core.state.day_log import log_blob_name
from sync_core.state.records import JobStats, LeadPierSession, RunRecord, new_run_id
from sync_core.state.store import StateStore, run_blob_name

DAY = date(2026, 2, 13)


@pytest.fixture
def target(azurite: Azurite, container_name: str) -> StorageTarget:
    return ConnectionStringTarget(connection_string=SecretStr(azurite.connection_string), container=container_name)


@pytest.fixture
def store(target: StorageTarget) -> StateStore:
    return StateStore(target)


def read_json(container: ContainerClient, name: str) -> dict:
    return json.loads(container.download_blob(name).readall())


def bump_total(stats: JobStats) -> None:
    stats.total_runs += 1


# --------------------------------------------------------------------------- job_stats.json and ETags


def test_the_first_update_creates_job_stats_json(store: StateStore, blob_container: ContainerClient) -> None:
    store.update_job_stats(bump_total)

    assert read_json(blob_container, "job_stats.json")["total_runs"] == 1


def test_concurrent_updates_from_two_stores_and_many_threads_lose_nothing(
    target: StorageTarget, blob_container: ContainerClient
) -> None:
    stores = [StateStore(target), StateStore(target)]
    stores[0].update_job_stats(bump_total)
    threads, per_thread, errors = 8, 5, []

    def work(index: int) -> None:
        try:
            for i in range(per_thread):
                stores[(index + i) % 2].update_job_stats(bump_total)
        except Exception as exc:
            errors.append(repr(exc))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    assert read_json(blob_container, "job_stats.json")["total_runs"] == 1 + threads * per_thread


def test_a_write_on_a_stale_etag_is_retried_on_fresh_data_not_lost(
    target: StorageTarget, blob_container: ContainerClient
) -> None:
    mine, theirs = StateStore(target), StateStore(target)
    mine.update_job_stats(bump_total)
    stale = mine.load_job_stats()
    theirs.update_job_stats(lambda stats: setattr(stats, "skipped_runs", stats.skipped_runs + 1))

    mine.update_job_stats(lambda stats: setattr(stats, "failed_runs", stats.failed_runs + 1), read=stale)

    saved = read_json(blob_container, "job_stats.json")
    assert (saved["total_runs"], saved["skipped_runs"], saved["failed_runs"]) == (1, 1, 1)


def test_two_first_writers_do_not_overwrite_each_other(target: StorageTarget, blob_container: ContainerClient) -> None:
    a, b = StateStore(target), StateStore(target)
    missing_a, missing_b = a.load_job_stats(), b.load_job_stats()
    assert missing_a[1] is None

    a.update_job_stats(bump_total, read=missing_a)
    b.update_job_stats(bump_total, read=missing_b)

    assert read_json(blob_container, "job_stats.json")["total_runs"] == 2


def test_a_corrupt_job_stats_json_is_treated_as_empty_and_rewritten_whole(
    store: StateStore, blob_container: ContainerClient
) -> None:
    store.ensure_container()
    blob_container.upload_blob("job_stats.json", b"{not json", overwrite=True)

    assert store.load_job_stats()[0] == JobStats()
    store.update_job_stats(bump_total)

    assert read_json(blob_container, "job_stats.json")["total_runs"] == 1


def test_saving_the_session_on_a_stale_etag_is_refused(store: StateStore, blob_container: ContainerClient) -> None:
    now = datetime.now(UTC)
    session = LeadPierSession(token="t1", last_login_time=now, expires_at=now + timedelta(hours=1))
    etag = store.save_session(session, None)
    store.save_session(session.model_copy(update={"token": "t2"}), etag)

    with pytest.raises(ConcurrentUpdate):
        store.save_session(session.model_copy(update={"token": "t3"}), etag)
    with pytest.raises(ConcurrentUpdate):
        store.save_session(session.model_copy(update={"token": "t4"}), None)  # "only if absent"

    assert read_json(blob_container, "source.json")["token"] == "t2"


# --------------------------------------------------------------------------- the lock


def test_only_one_holder_of_the_lock_at_a_time(store: StateStore, target: StorageTarget) -> None:
    first, second = store.lock(), StateStore(target).lock()

    assert first.try_acquire() is True
    try:
        assert second.try_acquire() is False
        assert store.lock_is_held() is True
    finally:
        first.release()

    assert store.lock_is_held() is False
    assert second.try_acquire() is True
    second.release()


def test_the_lock_blob_is_created_in_a_missing_container(store: StateStore, blob_container: ContainerClient) -> None:
    lock = store.lock()

    assert lock.try_acquire() is True
    lock.release()
    assert [b.name for b in blob_container.list_blobs()] == ["locks/sync.lock"]


def test_waiting_for_the_lock_succeeds_once_the_holder_releases(store: StateStore, target: StorageTarget) -> None:
    holder = store.lock()
    assert holder.try_acquire()
    timer = threading.Timer(0.3, holder.release)
    timer.start()

    waiter = StateStore(target).lock()
    try:
        assert waiter.acquire(wait_s=20, poll_s=0.1) is True
    finally:
        timer.join()
        waiter.release()


# --------------------------------------------------------------------------- run records


def test_a_run_record_is_kept_at_runs_day_run_id(store: StateStore, blob_container: ContainerClient) -> None:
    started = datetime(2026, 2, 13, 23, 59, 59, tzinfo=UTC)
    run_id = new_run_id(started)
    store.save_run(RunRecord(run_id=run_id, trigger="cli", status="success", started_at=started))

    name = f"runs/20260213/{run_id}.json"
    assert run_blob_name(run_id) == name
    assert read_json(blob_container, name)["status"] == "success"
    assert store.load_run(run_id) is not None and store.load_run("../../job_stats") is None


def test_runs_are_listed_newest_first(store: StateStore) -> None:
    base = datetime(2026, 2, 12, 23, 50, tzinfo=UTC)
    ids = [new_run_id(base + timedelta(minutes=10 * i)) for i in range(4)]  # spans two UTC days
    for run_id in ids:
        store.save_run(RunRecord(run_id=run_id, trigger="timer", status="success"))

    assert [r.run_id for r in store.list_runs(3)] == ids[::-1][:3]
    assert [r.run_id for r in store.list_runs(100)] == ids[::-1]


# --------------------------------------------------------------------------- the day's log


def test_log_lines_are_appended_to_the_days_append_blob(store: StateStore, blob_container: ContainerClient) -> None:
    store.append_log(DAY, "first line\n")
    store.append_log(DAY, "second line\nthird line\n")

    blob = blob_container.get_blob_client("logs/scheduler_20260213.log")
    assert blob.get_blob_properties().blob_type == "AppendBlob"
    assert blob.download_blob().readall() == b"first line\nsecond line\nthird line\n"
    assert log_blob_name(DAY) == "logs/scheduler_20260213.log"
    assert store.read_log(DAY) == b"first line\nsecond line\nthird line\n"


def test_concurrent_first_appends_keep_every_line(target: StorageTarget) -> None:
    stores = [StateStore(target) for _ in range(4)]
    stores[0].ensure_container()

    workers = [threading.Thread(target=s.append_log, args=(DAY, f"line {i}\n")) for i, s in enumerate(stores)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted((stores[0].read_log(DAY) or b"").decode().splitlines()) == [f"line {i}" for i in range(4)]


def test_the_tail_of_the_log_is_its_last_lines(store: StateStore) -> None:
    store.append_log(DAY, "".join(f"line {i}\n" for i in range(100)))

    name, lines = store.read_log_tail(DAY, 3, chunk=16)

    assert name == "logs/scheduler_20260213.log"
    assert lines == ["line 97", "line 98", "line 99"]
    assert store.read_log_tail(DAY + timedelta(days=1), 3) == (None, [])


def test_an_account_url_reaches_the_state_container_through_a_managed_identity() -> None:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    user_assigned = StateStore(
        AccountUrlTarget(account_url="https://acct.blob.core.windows.net", client_id="cid", container="leadpier-sync")
    )
    assert isinstance(user_assigned.container.credential, ManagedIdentityCredential)
    assert user_assigned.container.url == "https://acct.blob.core.windows.net/leadpier-sync"
    # No client id: the system-assigned identity in Azure, a developer's az login on a laptop.
    default = StateStore(AccountUrlTarget(account_url="https://acct.blob.core.windows.net", container="leadpier-sync"))
    assert isinstance(default.container.credential, DefaultAzureCredential)
