"""A run's lines: collected in the old format, and bounded for the run record and the day's log."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sync_core.telemetry.runlog import MAX_LINE_CHARS, MAX_LOG_LINES, RunLog

log = logging.getLogger("sync_core.pipeline")


def test_a_run_within_the_bound_keeps_every_line() -> None:
    with RunLog("20260213T175335101Z-9f00aa", "cli", ZoneInfo("Asia/Kolkata")) as runlog:
        for n in range(3):
            log.info("line %d", n)

    assert runlog.bounded() == runlog.lines
    assert [line.rsplit(" - ", 1)[-1] for line in runlog.bounded()] == ["line 0", "line 1", "line 2"]


def test_a_long_run_keeps_its_start_and_its_end_and_says_what_was_left_out() -> None:
    total = MAX_LOG_LINES + 250
    with RunLog("20260213T175335101Z-9f00aa", "cli", ZoneInfo("Asia/Kolkata")) as runlog:
        for n in range(total):
            log.info("line %d", n)

    kept = runlog.bounded()

    assert len(kept) == MAX_LOG_LINES
    messages = [line.rsplit(" - ", 1)[-1] for line in kept]
    assert messages[0] == "line 0" and messages[-1] == f"line {total - 1}"
    note = next(line for line in kept if "left out" in line)
    assert " - sync_core.pipeline - WARNING - " in note
    left_out = int(note.rsplit(" - ", 1)[-1].split()[0])
    assert left_out == total - (MAX_LOG_LINES - 1)
    assert sum(m.startswith("line ") for m in messages) == MAX_LOG_LINES - 1


def test_a_kept_line_is_at_most_what_logs_shows_of_one() -> None:
    with RunLog("20260213T175335101Z-9f00aa", "cli", ZoneInfo("Asia/Kolkata")) as runlog:
        log.info("%s", "x" * (MAX_LINE_CHARS * 2))

    [kept] = runlog.bounded()

    assert len(kept) == MAX_LINE_CHARS and kept.endswith("characters]")
