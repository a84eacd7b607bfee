"""Soak: hundreds of syncs back to back under random upstream and storage faults, then the invariants checked.

    .venv/bin/python -m bench.soak --runs 400 --fault-rate 0.2 --seed 1
    .venv/bin/python -m bench.soak --runs 300 --storage-rate 0.15 --storage-write-rate 0.4   # a throttled account

Runs against a private Azurite behind the fault proxy (sandbox/faultproxy.py) and the LeadPier/LE stand-ins.
Time is simulated for the report days (runs ten minutes to ten days apart, so days end, outages happen and
catch-up is needed); leases, timeouts and deadlines keep real time (run durations in the records read 0). Some starts are concurrent (two or three
runs at once: one proceeds, the others are skipped). After the last run the faults stop, the days the report
calls for a backfill are backfilled and one more timer run drains catch-up; then every invariant is checked:

- every run that took its lease has exactly one record (a run that could not reach storage to take the lock cannot
  have one, and is listed); a run's status is what it did upstream, whatever its bookkeeping met;
- after the drain (faults off, the next runs repair what earlier runs could not write): the counters in
  job_stats.json equal the run records, and each recorded run's lines are in the day's log exactly once;
- no lease is left behind;
- every past day is finalized, by one automatic run at most, and LE holds its final figures;
- no password, token, API key or account key in any blob but source.json, nor in any log line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from azure.storage.blob import ContainerClient

from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from sandbox.data import generate_rows
from sandbox.faultproxy import FaultProxy, matching
from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.rules.transform import transform_rows
from sync_core.run import repairs
from sync_core.run.pipeline import RunRequest, run_sync
from sync_core.services import Services, Timing, use_timing
from sync_core.settings import DEFAULT_TIMEZONE, load_settings
from sync_core.state.records import JobStats, RunRecord
from sync_core.state.store import StateStore
from sync_core.telemetry.runlog import LINE_FORMAT

TZ = ZoneInfo(DEFAULT_TIMEZONE)
CONTAINER = "soak-state"
USERNAME, PASSWORD, LE_KEY = "soak-user", "soak-password-8d1f", "soak-le-key-51c9"
ROWS_PER_DAY = 24
CLIENT_TIMEOUT_S = 1.0  # storage read timeout: a stalled answer outlasts it
STALL_S = 1.5
HTTP_TIMEOUT_S = 1
# A burst of throttling over one run's end: every try (the SDK's and the app's) of one derived write answered 503.
BURST_TARGETS = {
    "day_log": matching("PUT", r"/logs/.*comp=appendblock"),
    "job_stats": matching("PUT", r"/job_stats\.json"),
}
BURST_TRIES = 12


@dataclass
class SoakReport:
    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    storage_faults: Counter[str] = field(default_factory=Counter)
    upstream_faults: Counter[str] = field(default_factory=Counter)
    storage_write_faults: int = 0
    bursts: Counter[str] = field(default_factory=Counter)
    concurrent_groups: int = 0
    unrecorded: list[str] = field(default_factory=list)
    deferred: int = 0  # runs recorded whose counters or log lines were left to a later run
    repaired: int = 0  # runs whose missing bookkeeping a later run wrote
    days_simulated: int = 0
    days_caught_up: int = 0
    days_backfilled: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [
            f"soak: {self.runs} runs in {self.seconds:.1f} s, {self.days_simulated} days simulated, "
            f"{self.concurrent_groups} concurrent starts",
            "",
            "runs by status",
            *(f"  {s:<10} {n:>6}" for s, n in sorted(self.statuses.items())),
            f"  {'unrecorded':<10} {len(self.unrecorded):>6}  (storage unreachable while taking the lock)",
            "",
            f"storage faults injected (proxy), {self.storage_write_faults} of them on writes",
            *(f"  {k:<14} {n:>6}" for k, n in sorted(self.storage_faults.items())),
            f"bursts of 503 over every try of a write: {sum(self.bursts.values())} "
            f"({', '.join(f'{k} {n}' for k, n in sorted(self.bursts.items())) or 'none'})",
            "",
            f"runs with deferred bookkeeping (counters or log lines left to a later run): {self.deferred}",
            f"runs whose bookkeeping a later run repaired: {self.repaired}",
            "",
            "upstream faults injected (stand-ins, requests that met one)",
            *(f"  {k:<14} {n:>6}" for k, n in sorted(self.upstream_faults.items())),
            "",
            f"days caught up by timer runs: {self.days_caught_up}; days left beyond the window and "
            f"backfilled at the end: {self.days_backfilled}",
            "",
            f"invariant violations: {len(self.violations)}",
            *(f"  - {v}" for v in self.violations[:30]),
        ]
        return "\n".join(lines)


class _SimClock:
    """The moment the pipeline sees, moved forward by the driver between runs (held still during one, so a run
    and the rows served for it agree on whether a day has ended)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by

    def today(self) -> date:
        return self.now.astimezone(TZ).date()


def _final_rows(day: date) -> list[dict[str, Any]]:
    return generate_rows(ROWS_PER_DAY, day, seed=day.toordinal())


def _rows_at(day: date, now: datetime) -> list[dict[str, Any]]:
    """A day's rows as LeadPier shows them at `now`: growing through the day, final once it has ended."""
    rows = _final_rows(day)
    local = now.astimezone(TZ)
    if local.date() > day:
        return rows
    share = (local.hour * 60 + local.minute) / (24 * 60)
    return rows[: max(1, int(len(rows) * share))]


def _figures(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((r["campaign_code"], r["clicks"], r["leads"], r["sales"], r["revenue"]) for r in records)


def _expected(day: date) -> list[tuple[Any, ...]]:
    return _figures(
        [
            {
                "campaign_code": r.campaign_code,
                "clicks": r.clicks,
                "leads": r.leads,
                "sales": r.sales,
                "revenue": r.revenue,
            }
            for r in transform_rows(_final_rows(day)).records
        ]
    )


@contextlib.contextmanager
def _patched(values: dict[str, str], clock: _SimClock) -> Iterator[None]:
    """The app's settings in the environment, the simulated clock, and upstream backoff in milliseconds."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        with use_timing(Timing(clock=clock, backoff_initial_s=0.02, backoff_max_s=0.1)):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.lines.append(self.format(record))


def _upstream_fault(rng: random.Random, leadpier: FakeLeadPier, le: FakeLE) -> None:
    choice = rng.randrange(6)
    if choice == 0:
        leadpier.faults.add("stats", status=503, times=rng.randint(1, 4))  # 4: the day fails after its retries
    elif choice == 1:
        leadpier.faults.add("stats", close_connection=True, times=rng.randint(1, 2))
    elif choice == 2:
        leadpier.faults.add("stats", delay_s=HTTP_TIMEOUT_S + 0.3)  # one attempt times out
    elif choice == 3:
        le.faults.add("put", status=500, times=rng.randint(1, 4))
    elif choice == 4:
        le.faults.add("put", status=200, body={"success": False, "message": "busy"})  # a warning; not finalized
    else:
        le.faults.add("put", close_connection=True)


def soak(
    runs: int,
    fault_rate: float,
    seed: int,
    *,
    storage_rate: float | None = None,
    storage_write_rate: float | None = None,
    burst_rate: float = 0.0,
    concurrency_rate: float = 0.08,
    outage_rate: float = 0.05,
    quiet: bool = True,
) -> SoakReport:
    """Run the soak and return its report (violations empty when every invariant holds).

    `storage_rate`: the chance of a storage fault per read; `storage_write_rate`: per write (default the same);
    `burst_rate`: the chance per run that every try of its day's log append or its job_stats.json write is refused,
    so that its bookkeeping is left to a later run."""
    rng = random.Random(seed)
    report = SoakReport()
    storage_rate = fault_rate / 4 if storage_rate is None else storage_rate
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        azurite = stack.enter_context(Azurite(Path(stack.enter_context(tempfile.TemporaryDirectory()))))
        proxy = stack.enter_context(FaultProxy(azurite.blob_port, stall_s=STALL_S, seed=seed))
        leadpier = stack.enter_context(FakeLeadPier(username=USERNAME, password=PASSWORD))
        le = stack.enter_context(FakeLE(api_key=LE_KEY))
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT_NAME};QueueEndpoint={azurite.queue_endpoint};"
        )
        clock = _SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=TZ))
        first_day = clock.today() - timedelta(days=1)  # a fresh install syncs yesterday and today
        env = {
            "AzureWebJobsStorage": conn,
            "SYNC_STATE_CONTAINER": CONTAINER,
            "LEADPIER_BASE_URL": leadpier.url,
            "LEADPIER_USERNAME": USERNAME,
            "LEADPIER_PASSWORD": PASSWORD,
            "LE_API_URL": f"{le.url}/le_api.php",
            "LE_API_KEY": LE_KEY,
            "HTTP_TIMEOUT_SECONDS": str(HTTP_TIMEOUT_S),
            "SYNC_TIMEZONE": DEFAULT_TIMEZONE,
            "SYNC_RUN_DEADLINE_SECONDS": "30",
            "SYNC_CATCHUP_DAYS": "7",
        }
        capture = _LogCapture()
        capture.setFormatter(logging.Formatter(LINE_FORMAT))
        root = logging.getLogger()
        root.addHandler(capture)
        previous_level = root.level
        root.setLevel(logging.INFO)
        stack.callback(root.removeHandler, capture)
        stack.callback(root.setLevel, previous_level)
        stack.enter_context(_patched(env, clock))
        settings = load_settings()
        records: list[RunRecord] = []
        lock = threading.Lock()

        def one_run(trigger: str = "timer", **request: Any) -> None:
            store = StateStore(settings.storage, timeout_s=CLIENT_TIMEOUT_S, retry_backoff_s=0.1)
            services = Services.build(settings, store=store)
            record = run_sync(RunRequest(trigger=trigger, **request), services=services)  # type: ignore[arg-type]
            with lock:
                records.append(record)

        def serve_rows() -> None:
            today = clock.today()
            for back in range(0, 12):
                day = today - timedelta(days=back)
                if day >= first_day:
                    leadpier.set_rows(day, _rows_at(day, clock()))

        proxy.set_rate(storage_rate, writes=storage_write_rate)
        done = 0
        while done < runs:
            leadpier.faults.clear()
            le.faults.clear()
            if rng.random() < fault_rate:
                _upstream_fault(rng, leadpier, le)
            before = {"leadpier": leadpier.faults.pending(), "le": le.faults.pending()}
            pending_kinds = [f"leadpier:{k}" for k in ("stats", "login") for _ in range(leadpier.faults.pending(k))]
            pending_kinds += ["le:put"] * le.faults.pending("put")
            serve_rows()
            if rng.random() < burst_rate:
                target = rng.choice(sorted(BURST_TARGETS))
                proxy.plan("busy", times=BURST_TRIES, match=BURST_TARGETS[target])
                report.bursts[target] += 1
            if rng.random() < concurrency_rate and runs - done >= 2:
                count = min(rng.randint(2, 3), runs - done)
                barrier = threading.Barrier(count)

                def together(barrier: threading.Barrier = barrier) -> None:
                    barrier.wait()
                    one_run()

                threads = [threading.Thread(target=together) for _ in range(count)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(120)
                report.concurrent_groups += 1
                done += count
            else:
                one_run()
                done += 1
            proxy.clear_plans()  # a burst lasts one run
            met = before["leadpier"] - leadpier.faults.pending() + before["le"] - le.faults.pending()
            report.upstream_faults.update(pending_kinds[:met] if pending_kinds else [])
            step = rng.random()
            if step < outage_rate:
                clock.advance(timedelta(days=rng.randint(2, 10), hours=rng.randint(0, 23)))
            elif step < 0.1:
                clock.advance(timedelta(hours=rng.randint(18, 30)))
            elif step < 0.3:
                clock.advance(timedelta(hours=rng.randint(2, 6)))
            else:
                clock.advance(timedelta(minutes=10))
            if not quiet and done % 50 == 0:
                print(f"  {done} runs, {time.monotonic() - started:.0f} s", flush=True)

        # Drain: faults off, the days beyond the window backfilled (as the health check says), catch-up finished.
        proxy.clear()
        leadpier.faults.clear()
        le.faults.clear()
        report.storage_faults = proxy.counts()
        report.storage_write_faults = sum(proxy.counts(writes=True).values())
        serve_rows()
        direct = stack.enter_context(ContainerClient.from_connection_string(azurite.connection_string, CONTAINER))
        _wait_for_the_lock(direct)  # a lease granted while its answer was lost lapses within 30 s
        # Runs that did not hold the lock are repaired once they have surely ended (SETTLED_AFTER).
        clock.advance(repairs.SETTLED_AFTER)
        serve_rows()
        stats = StateStore(settings.storage).load_job_stats()[0]
        backfill = [date.fromisoformat(d) for d in stats.unsynced_days]
        for day in backfill:
            leadpier.set_rows(day, _final_rows(day))
            one_run("manual", dates=[day])
        report.days_backfilled = len(backfill)
        one_run()
        one_run()

        report.runs = len(records)
        report.seconds = time.monotonic() - started
        report.days_simulated = (clock.today() - first_day).days + 1
        report.violations = _check(report, records, direct, le, leadpier, first_day, clock.today(), capture.lines)
    return report


def _wait_for_the_lock(container: ContainerClient, timeout_s: float = 40.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if container.get_blob_client("locks/sync.lock").get_blob_properties().lease.state != "leased":
            return
        time.sleep(0.5)


def _check(
    report: SoakReport,
    records: list[RunRecord],
    container: ContainerClient,
    le: FakeLE,
    leadpier: FakeLeadPier,
    first_day: date,
    today: date,
    log_lines: list[str],
) -> list[str]:
    violations: list[str] = []
    report.statuses = Counter(r.status for r in records)
    report.unrecorded = [r.run_id for r in records if "while taking the lock" in (r.error or "")]
    report.deferred = sum(1 for r in records if r.recording is not None and "run_record" not in r.recording.missing)
    recorded = [r for r in records if r.run_id not in report.unrecorded]
    blobs = {b.name: container.download_blob(b.name).readall() for b in container.list_blobs()}

    # Every run recorded once, with the status it returned.
    stored = {
        name.rsplit("/", 1)[-1].removesuffix(".json"): RunRecord.model_validate_json(body)
        for name, body in blobs.items()
        if name.startswith("runs/")
    }
    if len({r.run_id for r in records}) != len(records):
        violations.append("a run id was used twice")
    for record in recorded:
        if record.run_id not in stored:
            violations.append(f"run {record.run_id} ({record.status}) has no record")
        elif stored[record.run_id].status != record.status:
            violations.append(
                f"run {record.run_id} returned {record.status} but its record says {stored[record.run_id].status}"
            )
    extra = set(stored) - {r.run_id for r in recorded}
    if extra:
        violations.append(f"{len(extra)} run record(s) of no run: {sorted(extra)[:3]}")

    report.repaired = sum(1 for r in stored.values() if r.recording is not None and r.recording.status == "repaired")
    lost = [r.run_id for r in recorded if r.recording is not None and "run_record" in r.recording.missing]
    if lost:
        violations.append(f"{len(lost)} run(s) took the lock but could not record themselves: {lost[:3]}")
    # A run's status is what it did upstream: bookkeeping trouble is never the reason a run failed.
    blamed = [r.run_id for r in records if "could not be recorded" in (r.error or "")]
    if blamed:
        violations.append(f"{len(blamed)} run(s) failed for their bookkeeping: {blamed[:3]}")

    # Counters equal the run records.
    stats = JobStats.model_validate_json(blobs["job_stats.json"])
    statuses = Counter(r.status for r in stored.values())
    expected = (statuses["success"], statuses["failed"] + statuses["warning"], statuses["skipped"])
    if (stats.successful_runs, stats.failed_runs, stats.skipped_runs) != expected:
        violations.append(
            f"counters (success, failed, skipped) = {(stats.successful_runs, stats.failed_runs, stats.skipped_runs)}"
            f", run records say {expected}"
        )
    if stats.total_runs != expected[0] + expected[1]:
        violations.append(f"total_runs {stats.total_runs} != {expected[0] + expected[1]}")

    # Each run's lines in the day's log exactly once (a retried append never doubles them).
    log_text = b"".join(body for name, body in sorted(blobs.items()) if name.startswith("logs/")).decode(
        "utf-8", "replace"
    )
    for record in recorded:
        seen = log_text.count(f"Run {record.run_id} finished")
        if seen != 1:
            violations.append(f"run {record.run_id} finished {seen} times in the logs")

    # No lease left behind.
    if container.get_blob_client("locks/sync.lock").get_blob_properties().lease.state == "leased":
        violations.append("the run lock is still leased")

    # Every past day finalized (by one automatic run at most) and LE holds its final figures.
    if stats.unsynced_days or stats.finalized_days:
        violations.append(
            f"days still open after the drain: unsynced {stats.unsynced_days}, out of order {stats.finalized_days}"
        )
    if stats.last_finalized_day != (today - timedelta(days=1)).isoformat():
        violations.append(
            f"last finalized day {stats.last_finalized_day}, expected yesterday {today - timedelta(days=1)}"
        )
    automatic = Counter(d for r in stored.values() if r.trigger == "timer" for d in r.finalized_dates)
    report.days_caught_up = sum(len(r.caught_up_dates) for r in stored.values())
    twice = sorted(d for d, n in automatic.items() if n > 1)
    if twice:
        violations.append(f"days finalized by more than one automatic run: {twice[:5]}")
    held = le.received_days()
    day = first_day
    while day < today:
        if _figures(held.get(day.isoformat(), [])) != _expected(day):
            violations.append(f"LE does not hold the final figures of {day}")
        day += timedelta(days=1)

    # No secret anywhere but source.json.
    secrets = [PASSWORD, LE_KEY, ACCOUNT_KEY, *leadpier.issued_tokens]
    for name, body in blobs.items():
        if name != "source.json" and any(s.encode() in body for s in secrets):
            violations.append(f"a secret in blob {name}")
    leaked = [line for line in log_lines if any(s in line for s in secrets)]
    if leaked:
        violations.append(f"{len(leaked)} log line(s) hold a secret, e.g. {leaked[0][:120]!r}")
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="chance of an upstream fault per run")
    parser.add_argument(
        "--storage-rate",
        type=float,
        default=None,
        help="chance of a storage fault per storage read (default: a quarter of --fault-rate)",
    )
    parser.add_argument(
        "--storage-write-rate",
        type=float,
        default=None,
        help="chance of a storage fault per storage write (default: --storage-rate)",
    )
    parser.add_argument(
        "--storage-burst-rate",
        type=float,
        default=0.0,
        help="chance per run that every try of its day's log append or job_stats.json write is refused",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger().handlers.clear()  # the run's lines are checked, not printed
    report = soak(
        args.runs,
        args.fault_rate,
        args.seed,
        storage_rate=args.storage_rate,
        storage_write_rate=args.storage_write_rate,
        burst_rate=args.storage_burst_rate,
        quiet=False,
    )
    print(report.table())
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
