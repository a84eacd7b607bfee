"""The host's NCRONTAB grammar: what it accepts and refuses, its next firing, and one grammar for load, /health, /status."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from azure.functions.decorators.timer import TimerTrigger

from sync_core.rules import ncrontab
from sync_core.rules.schedule import validate_schedule
from tests.functions_helpers import REPO_ROOT, App

UTC = UTC
AFTER = datetime(2026, 12, 4, 10, 17, 30, tzinfo=UTC)  # a Friday

ACCEPTED = [
    "0 */10 * * * *",
    "*/15 * * * * *",
    "0 0 */2 * * MON-FRI",
    "30 5 2 * * 1-5",
    "0 0 0 1 1 *",
    "0 0 9 * jan-mar sun",
    "0 0 9 * * Monday",
    "5/15 * * * * *",
    "0 0,30 8-18/2 * * *",
    "0 59-0 * * * *",
]
# The host's NCrontab has no L, W, # or ?, which Quartz-style parsers take; a step of 0 and out-of-range values are refused.
REFUSED = [
    "0 0 0 L * *",
    "0 0 0 * * 1#2",
    "0 0 0 15W * *",
    "0 0 12 ? * *",
    "0 0 0 * * 5L",
    "*/0 * * * * *",
    "0 60 * * * *",
    "0 0 24 * * *",
    "0 0 0 0 * *",
    "0 0 0 32 * *",
    "0 0 0 * 13 *",
    "0 0 0 * * 7",
    "0 0 0 * * XYZ",
    "*/10 * * * *",
    "0 */10 * * * * *",
    "",
    "0 1,,2 * * * *",
    "0 -5 * * * *",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_the_hosts_grammar_is_accepted(expression: str) -> None:
    assert ncrontab.is_valid(expression)


@pytest.mark.parametrize("expression", REFUSED)
def test_what_the_host_refuses_is_refused_with_the_field_named(expression: str) -> None:
    with pytest.raises(ncrontab.ScheduleError) as raised:
        ncrontab.parse(expression)
    assert "field" in str(raised.value) or "fields" in str(raised.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */10 * * * *", datetime(2026, 12, 4, 10, 20, tzinfo=UTC)),
        ("*/15 * * * * *", datetime(2026, 12, 4, 10, 17, 45, tzinfo=UTC)),
        ("0 0 */2 * * MON-FRI", datetime(2026, 12, 4, 12, 0, tzinfo=UTC)),
        ("0 0 9 * * Mon", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),  # next Monday
        ("5/15 * * * * *", datetime(2026, 12, 4, 10, 17, 35, tzinfo=UTC)),  # 5, 20, 35, 50
        ("0 0 0 1 * *", datetime(2027, 1, 1, tzinfo=UTC)),  # into the next month and year
        ("0 0 0 31 * *", datetime(2026, 12, 31, tzinfo=UTC)),
        ("0 0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),  # the next leap day
        ("0 0 0 13 * FRI", datetime(2027, 8, 13, tzinfo=UTC)),  # day AND weekday, as NCrontab does
    ],
)
def test_the_next_firing_follows_the_hosts_rules(expression: str, expected: datetime) -> None:
    assert ncrontab.parse(expression).next_after(AFTER) == expected


def test_a_schedule_that_never_fires_has_no_next_firing() -> None:
    assert ncrontab.parse("0 0 0 31 2 *").next_after(AFTER) is None


@pytest.mark.parametrize("expression", ACCEPTED + REFUSED)
def test_the_load_time_check_and_the_settings_check_agree(expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What function_app gives the host and what /health and /status call valid come from one grammar."""
    monkeypatch.setenv("SYNC_SCHEDULE", expression)
    timer = App().functions["sync_timer"].get_trigger()
    assert isinstance(timer, TimerTrigger)
    assert isinstance(timer, TimerTrigger)
    try:
        validate_schedule(expression)
        health_accepts = True
    except ValueError:
        health_accepts = False
    host_runs_it = timer.schedule == " ".join(expression.split())
    assert host_runs_it == health_accepts
    if expression.strip() and not health_accepts:
        assert timer.schedule == "0 */10 * * * *"


def test_the_grammar_imports_nothing_outside_the_standard_library() -> None:
    script = (
        "import sys; before = set(sys.modules); import sync_core.rules.ncrontab\n"
        "print(sorted(m for m in set(sys.modules) - before if not m.startswith('sync_core')"
        " and m.split('.')[0] not in sys.stdlib_module_names))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
