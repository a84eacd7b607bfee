"""The per-day summaries: one digest per run, written by the run, repaired from the records, the same page either way."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from azure.storage.blob import ContainerClient

from sandbox.data import generate_rows
from sandbox.history import synthetic_runs
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.settings import load_settings
from sync_core.state import summaries
from sync_core.state.records import RunRecord, utcnow
from sync_core.state.store import StateStore
from sync_core.web import dashboard

IST = ZoneInfo("Asia/Kolkata")


def run(**request: Any) -> RunRecord:
    return run_sync(RunRequest(**{"trigger": "cli", **request}))


def today() -> date:
    return datetime.now(IST).date()


def summary_of(container: ContainerClient, run_id: str) -> dict[str, Any]:
    name = summaries.summary_blob_name(summaries.run_day(run_id))
    return dict(json.loads(container.download_blob(name).readall()))


def summary_names(container: ContainerClient) -> list[str]:
    return [b.name for b in container.list_blobs(name_starts_with="summaries/")]


def store() -> StateStore:
    return StateStore(load_settings().storage)


def unmatched_section(html: str) -> str:
    section = html.split('id="unmatched"', 1)[1].split("</section>")[0]
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))


def test_each_run_writes_its_digest_into_its_days_summary_once(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient
) -> None:
    leadpier.set_rows(today(), generate_rows(40, today()))
    first = run(dates=[today()])
    second = run(dates=[today()])
    held = summary_of(blob_container, first.run_id)["runs"]
    assert [first.run_id, second.run_id] == [rid for rid in held if rid in (first.run_id, second.run_id)]
    digest = held[first.run_id]
    assert digest["status"] == first.status == "success"
    assert digest["sent_records"] == first.sent_records > 0
    assert "log_lines" not in digest  # the summary keeps what the page shows, not the run's lines
    # The same run recorded again (a retried write) replaces its digest: still one, and nothing is written.
    again = store().load_run(first.run_id)
    assert again is not None
    assert not summaries.add_runs(store(), summaries.run_day(first.run_id), [again], replace=True)
    assert list(summary_of(blob_container, first.run_id)["runs"]).count(first.run_id) == 1


def test_a_summary_that_cannot_be_written_leaves_the_run_as_it_was_and_the_page_repairs_it(
    sync_env: dict[str, str], leadpier: FakeLeadPier, blob_container: ContainerClient, caplog: pytest.LogCaptureFixture
) -> None:
    leadpier.set_rows(today(), generate_rows(30, today()))
    earlier = run(dates=[today()])
    name = summaries.summary_blob_name(summaries.run_day(earlier.run_id))
    lease = blob_container.get_blob_client(name).acquire_lease(-1)  # writers without the lease are refused
    try:
        blocked = run(dates=[today()])
        assert blocked.status == "success"
        assert blocked.run_id not in summary_of(blob_container, earlier.run_id)["runs"]
        assert "the day's summary could not be written" in caplog.text  # in the worker's log, for an operator
    finally:
        lease.release()
    cache = dashboard.RunCache()
    html = dashboard.render(dashboard.collect({}, cache=cache))
    assert cache.reads == 1  # only the run the summary lacked is read from its record
    assert blocked.run_id in summary_of(blob_container, earlier.run_id)["runs"]  # folded in, once
    cold = dashboard.RunCache()
    assert dashboard.render(dashboard.collect({}, cache=cold, now=None)).count(blocked.run_id) == html.count(
        blocked.run_id
    )
    assert cold.reads == 0


def test_missing_summaries_are_rebuilt_from_the_records_once_and_the_page_is_the_same(
    sync_env: dict[str, str], blob_container: ContainerClient
) -> None:
    state = store()
    state.ensure_container()
    now = utcnow()
    history = list(synthetic_runs(now, days=3, per_day=48, tz=IST))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(state.save_run, history))
    shown_at = now + timedelta(seconds=1)
    from_records = dashboard.RunCache(summaries=False)
    expected = dashboard.render(dashboard.collect({"code": "k"}, cache=from_records, now=shown_at))
    assert from_records.reads == len(history)
    assert summary_names(blob_container) == []

    repairing = dashboard.RunCache()
    assert dashboard.render(dashboard.collect({"code": "k"}, cache=repairing, now=shown_at)) == expected
    assert repairing.reads == len(history)  # no summary yet: every record read, and the summaries written
    held = {
        rid
        for name in summary_names(blob_container)
        for rid in json.loads(blob_container.download_blob(name).readall())["runs"]
    }
    assert held == {r.run_id for r in history}

    cold = dashboard.RunCache()
    assert dashboard.render(dashboard.collect({"code": "k"}, cache=cold, now=shown_at)) == expected
    assert cold.reads == 0  # a new worker: the days' summaries, no run record
    assert cold.summary_reads == len(summary_names(blob_container))

    # A summary lost (or never written) again: rebuilt once, by the next render that meets it.
    lost = summary_names(blob_container)[0]
    blob_container.delete_blob(lost)
    rebuilt = dashboard.RunCache()
    assert dashboard.render(dashboard.collect({"code": "k"}, cache=rebuilt, now=shown_at)) == expected
    assert 0 < rebuilt.reads < len(history)
    assert lost in summary_names(blob_container)


def test_unmatched_codes_are_ranked_by_their_records_in_the_run(
    sync_env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE
) -> None:
    figures = generate_rows(1, today())[0]
    rows = [{**figures, "source": f"broken_{n:02d}"} for n in range(30)]
    rows += [{**figures, "source": "the-frequent-one"} for _ in range(50)]
    leadpier.set_rows(today(), rows)
    record = run(dates=[today()])
    (reason,) = record.unmatched_counts
    assert record.unmatched_counts[reason] == 80
    assert list(record.unmatched_top[reason].items())[0] == ("the-frequent-one", 50)
    assert len(record.unmatched_top[reason]) == 20  # bounded: the top codes only
    section = unmatched_section(dashboard.render(dashboard.collect({}, cache=dashboard.RunCache())))
    assert "80 " in section
    codes = re.findall(r"(\S+) (\d+)", section.split("runs in 7 days", 1)[1])
    assert codes[0] == ("the-frequent-one", "50")
    assert all(count == "1" for _, count in codes[1:]) and len(codes) == dashboard.figures.CODES_PER_REASON


def test_a_worker_that_moves_to_another_container_keeps_nothing_from_the_first(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = dashboard.RunCache()
    for container, seed in (("first-state", 1), ("second-state", 2)):
        monkeypatch.setenv("SYNC_STATE_CONTAINER", container)
        state = store()
        state.ensure_container()
        past = list(synthetic_runs(utcnow() - timedelta(days=2), days=1, per_day=4, seed=seed))
        for record in past:
            state.save_run(record)
        # The same worker's page (a past day's listing is kept) holds this container's runs, and only them.
        assert {r.run_id for r in dashboard.collect({}, cache=cache).runs} == {r.run_id for r in past}
