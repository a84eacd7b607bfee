"""The soak in short: a few dozen syncs under random upstream and storage faults, concurrent starts and outages,
then every invariant (runs recorded once, counters, lease, finalized days and LE's figures, no secret)."""

from __future__ import annotations

from bench.soak import soak


def test_a_short_soak_breaks_no_invariant() -> None:
    report = soak(runs=40, fault_rate=0.3, seed=11, storage_rate=0.06, concurrency_rate=0.15, outage_rate=0.1)

    assert report.violations == [], report.table()
    assert report.runs >= 40
    assert sum(report.storage_faults.values()) > 0 and sum(report.upstream_faults.values()) > 0
    assert report.concurrent_groups > 0


def test_a_short_soak_on_a_throttled_account_breaks_no_invariant() -> None:
    """40 % of storage writes and 15 % of reads fail, with bursts that refuse every try of a run's log append or
    counters: every run still says what it did upstream, and after the drain the counters and the day's log agree
    with the run records."""
    report = soak(runs=24, fault_rate=0.2, seed=17, storage_rate=0.15, storage_write_rate=0.4, burst_rate=0.25)

    assert report.violations == [], report.table()
    assert report.storage_write_faults > 0
    assert report.deferred > 0 and report.repaired > 0, report.table()  # the repairs were exercised
