"""Property: whatever pages LeadPier serves (types, sizes, unicode, control characters, counts, nesting) and whatever LE
answers, a run ends with a record, every stored document stays under its ceiling, the day's log gains exactly the lines
the app wrote, and no secret is kept outside source.json."""

from __future__ import annotations

import re
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.state.records import FINAL_STATUSES
from tests.conftest import LEADPIER_PASSWORD
from tests.faults.conftest import DAY, blob_text, day_log, job_stats, state, sync

CEILING = 64 * 1024  # bytes of any stored document (the lease blob and the session aside)
APP_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - sync_core(\.\w+)* - (INFO|WARNING|ERROR) - ")

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8", categories=("Cc", "Zl", "Zp", "Cf", "So", "Lo")), max_size=40),
    st.sampled_from(["\n2026-02-13 23:59:59,999 - sync_core.pipeline - INFO - Run FORGED finished: success", "\x1b]0;x\x07"]),
    st.builds(lambda piece, times: piece * times, st.sampled_from(["x", "\n", "\u2028", "\x1b[2J"]), st.integers(1, 20_000)),
    st.builds(lambda code: f"mta_0213-{code}-e1", st.sampled_from(["lbe", "xyz", "LBE"])),
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), hostile_text
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)  # fmt: skip
rows = st.one_of(
    st.fixed_dictionaries(
        {"source": hostile_text},
        optional={"visitors": st.one_of(st.integers(-5, 10**6), values), "totalLeads": values, "totalRevenue": values},
    ),
    values,  # not even an object
)
le_answers = st.one_of(
    st.none(),  # the stand-in's own matching
    st.fixed_dictionaries(
        {"success": st.booleans()},
        optional={
            "message": hostile_text,
            "errors": st.lists(hostile_text, max_size=80),
            "matched": st.integers(0, 10**6),
            "details": st.lists(st.dictionaries(st.text(max_size=5), scalars, max_size=3), max_size=5),
        },
    ),
)


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Small pages and a low ceiling, so a few generated rows reach both."""
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "5")
    monkeypatch.setenv("LEADPIER_MAX_ROWS_PER_DAY", "40")


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    day_rows=st.lists(rows, max_size=30),
    claimed=st.one_of(st.none(), st.integers(-3, 10**12)),
    endless=st.booleans(),
    answer=le_answers,
)
def test_any_pages_end_in_a_bounded_record_and_an_honest_log(
    tight: None,
    leadpier: FakeLeadPier,
    le: FakeLE,
    blob_container: ContainerClient,
    day_rows: list[Any],
    claimed: int | None,
    endless: bool,
    answer: dict[str, Any] | None,
) -> None:
    leadpier.set_rows(DAY, [row if isinstance(row, dict) else {"row": row} for row in day_rows])
    leadpier.claimed_count, leadpier.endless_pages, le.respond = claimed, endless, answer
    log_before = len(day_log(blob_container).encode()) if blob_container.exists() else 0

    record = sync()

    assert record.status in FINAL_STATUSES
    assert state().load_run(record.run_id) is not None
    secrets = [LEADPIER_PASSWORD, *leadpier.issued_tokens]
    for blob in blob_container.list_blobs():
        if blob.name in ("locks/sync.lock", "source.json"):
            continue
        if not blob.name.startswith("logs/"):
            assert blob.size < CEILING, f"{blob.name}: {blob.size} bytes"
        text = blob_text(blob_container, blob.name)
        assert not any(secret in text for secret in secrets), blob.name
    log = day_log(blob_container)
    assert len(log.encode()) - log_before < CEILING  # what one run adds to the day's log
    lines = log.splitlines()
    assert len(lines) == sum(job_stats().log_lines.values())  # exactly the lines the runs said they added
    for line in lines:
        assert APP_LINE.match(line), line[:200]
        assert len(line) < 4096
