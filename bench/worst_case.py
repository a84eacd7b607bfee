"""How long a failing run takes, and how many attempts each upstream call gets, against the loopback stand-ins.

    .venv/bin/python -m bench.worst_case            # about 1.5 minutes; prints a Markdown table and JSON
    .venv/bin/python -m bench.worst_case --long     # also measures the 30 s Retry-After cap at full length (+3 min)

Each scenario is one timer-style run (no dates given: yesterday and today, as on a fresh deployment, so two report
days) on a private Azurite, with the DEFAULT settings (HTTP_TIMEOUT_SECONDS=30, SYNC_RUN_DEADLINE_SECONDS=480, 4
attempts per call, backoff 1/2/4 s) unless the scenario says otherwise. A server that never answers would take
minutes per scenario at the default 30 s timeout, so it is measured with a 2 s timeout and the default figure is
computed from the same formula the measurement confirms: attempts x timeout + backoff waits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sandbox.azurite import Azurite  # noqa: E402
from sandbox.upstream import FakeLE, FakeLeadPier  # noqa: E402
from sync_core.run.pipeline import RunRequest, run_sync  # noqa: E402
from sync_core.services import Services  # noqa: E402
from sync_core.settings import load_settings  # noqa: E402
from sync_core.upstream import http  # noqa: E402

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_DEADLINE_S = 480.0
ALWAYS = 10_000  # "every request from now on"
# Backoff before retries 1..3: 1, 2, 4 s, each with up to initial/4 = 0.25 s of jitter (tenacity's wait_exponential_jitter).
BACKOFF_S: float = sum(min(http.BACKOFF_INITIAL_S * 2**i, http.BACKOFF_MAX_S) for i in range(http.ATTEMPTS - 1))
BACKOFF_JITTER_MAX_S = (http.ATTEMPTS - 1) * http.BACKOFF_INITIAL_S / 4


@dataclass
class Outcome:
    scenario: str
    settings: str
    status: str
    error: str | None
    wall_s: float
    leadpier_logins_asked: int
    leadpier_stats_asked: int
    le_puts: int
    upstream_requests: int


def per_call_worst_s(timeout_s: float) -> float:
    """A call whose every attempt times out: all attempts, and the backoff between them (jitter at its maximum)."""
    return http.ATTEMPTS * timeout_s + BACKOFF_S + BACKOFF_JITTER_MAX_S


def run_scenario(
    name: str, azurite: Azurite, index: int, arrange: Callable[[FakeLeadPier, FakeLE], None], **settings: str
) -> Outcome:
    with FakeLeadPier() as leadpier, FakeLE() as le, tempfile.TemporaryDirectory() as cwd:
        arrange(leadpier, le)
        environ = {
            "AzureWebJobsStorage": azurite.connection_string,
            "SYNC_STATE_CONTAINER": f"worst-case-{index}",
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": leadpier.username,
            "LEADPIER_PASSWORD": leadpier.password,
            "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
            **settings,
        }
        os.chdir(cwd)  # no local.settings.json
        started = time.perf_counter()
        record = run_sync(RunRequest(trigger="timer"), services=Services.build(load_settings(environ)))
        wall = time.perf_counter() - started
        os.chdir(REPO_ROOT)
        return Outcome(
            scenario=name,
            settings=", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults",
            status=record.status,
            error=record.error,
            wall_s=round(wall, 2),
            leadpier_logins_asked=len(leadpier.login_requests),
            leadpier_stats_asked=len(leadpier.stats_requests),
            le_puts=len(le.puts),
            upstream_requests=record.upstream_requests,
        )


def scenarios(long: bool) -> list[tuple[str, Callable[[FakeLeadPier, FakeLE], None], dict[str, str]]]:
    def leadpier_503(lp: FakeLeadPier, le: FakeLE) -> None:
        lp.faults.add("login", status=503, body="Service Unavailable", times=ALWAYS)

    def stats_503(lp: FakeLeadPier, le: FakeLE) -> None:
        lp.faults.add("stats", status=503, body="Service Unavailable", times=ALWAYS)

    def leadpier_silent(lp: FakeLeadPier, le: FakeLE) -> None:
        lp.faults.add("login", delay_s=3600, times=ALWAYS)

    def stats_silent(lp: FakeLeadPier, le: FakeLE) -> None:
        lp.faults.add("stats", delay_s=3600, times=ALWAYS)

    def le_500(lp: FakeLeadPier, le: FakeLE) -> None:
        _rows(lp)
        le.faults.add("put", status=500, body="Internal Server Error", times=ALWAYS)

    def le_silent(lp: FakeLeadPier, le: FakeLE) -> None:
        _rows(lp)
        le.faults.add("put", delay_s=3600, times=ALWAYS)

    def retry_after_cap(lp: FakeLeadPier, le: FakeLE) -> None:
        lp.faults.add("login", status=429, headers={"Retry-After": "3600"}, times=ALWAYS)

    found: list[tuple[str, Callable[[FakeLeadPier, FakeLE], None], dict[str, str]]] = [
        ("LeadPier login answers 503 every time", leadpier_503, {}),
        ("LeadPier statistics answer 503 every time", stats_503, {}),
        ("LE answers 500 every time", le_500, {}),
        ("LeadPier login never answers", leadpier_silent, {"HTTP_TIMEOUT_SECONDS": "2"}),
        ("LeadPier statistics never answer", stats_silent, {"HTTP_TIMEOUT_SECONDS": "2"}),
        ("LE never answers", le_silent, {"HTTP_TIMEOUT_SECONDS": "2"}),
        (
            "LeadPier never answers, run deadline reached",
            leadpier_silent,
            {"HTTP_TIMEOUT_SECONDS": "2", "SYNC_RUN_DEADLINE_SECONDS": "5"},
        ),
    ]
    if long:
        found.append(("LeadPier answers 429, Retry-After: 3600 (capped at 30 s)", retry_after_cap, {}))
    return found


def _rows(lp: FakeLeadPier) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from sandbox.data import generate_rows
    from sync_core.settings import DEFAULT_TIMEZONE

    today = datetime.now(ZoneInfo(DEFAULT_TIMEZONE)).date()
    for day in (today - timedelta(days=1), today):
        lp.set_rows(day, generate_rows(200, day))


def computed() -> dict[str, Any]:
    """The default-settings figures that would take minutes to measure, from the formula the runs confirm."""
    per_call = per_call_worst_s(DEFAULT_TIMEOUT_S)
    return {
        "attempts_per_call": http.ATTEMPTS,
        "backoff_between_attempts_s": [
            min(http.BACKOFF_INITIAL_S * 2**i, http.BACKOFF_MAX_S) for i in range(http.ATTEMPTS - 1)
        ],
        "backoff_jitter_max_s": http.BACKOFF_INITIAL_S / 4,
        "retry_after_cap_s": http.RETRY_AFTER_MAX_S,
        "never_answers_one_call_s": per_call,
        "never_answers_run_two_days_s": 2 * per_call,
        "retry_after_cap_one_call_s": (http.ATTEMPTS - 1) * http.RETRY_AFTER_MAX_S,
        "retry_after_cap_run_two_days_s": 2 * (http.ATTEMPTS - 1) * http.RETRY_AFTER_MAX_S,
        "upstream_phase_bound_s": DEFAULT_DEADLINE_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help="also measure the Retry-After cap at full length")
    args = parser.parse_args(argv)
    # The runs' own lines would bury the table: only errors reach stderr (sync_core's logger itself is at INFO).
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    logging.getLogger().addHandler(handler)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as workdir, Azurite(Path(workdir)) as azurite:
        for index, (name, arrange, settings) in enumerate(scenarios(args.long)):
            outcome = run_scenario(name, azurite, index, arrange, **settings)
            outcomes.append(outcome)
            print(f"measured: {name}: {outcome.status} in {outcome.wall_s} s", file=sys.stderr, flush=True)

    print("| scenario | settings | status | wall (s) | logins asked | stats asked | LE PUTs | error |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for o in outcomes:
        print(
            f"| {o.scenario} | {o.settings} | {o.status} | {o.wall_s} | {o.leadpier_logins_asked} | "
            f"{o.leadpier_stats_asked} | {o.le_puts} | {o.error} |"
        )
    figures = computed()
    figures["formula_check_2s_timeout_one_call_s"] = per_call_worst_s(2.0)
    print()
    print(json.dumps({"measured": [asdict(o) for o in outcomes], "computed_for_defaults": figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
