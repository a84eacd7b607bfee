"""The report-day planner and the finalized-day marker: catch-up after an outage, gaps, fresh installs."""

from __future__ import annotations

from datetime import date, timedelta

from sync_core.rules.days import advance, catch_up, report_days, window_start

TODAY = date(2026, 2, 20)


def d(day: int) -> date:
    return date(2026, 2, day)


def test_a_finalized_yesterday_leaves_only_today() -> None:
    assert report_days(TODAY, d(19), 7) == [TODAY]


def test_yesterday_is_synced_until_it_is_finalized() -> None:
    assert report_days(TODAY, d(18), 7) == [d(19), TODAY]


def test_after_an_outage_every_missed_day_is_synced_oldest_first() -> None:
    assert report_days(TODAY, d(15), 7) == [d(16), d(17), d(18), d(19), TODAY]


def test_catch_up_reaches_back_at_most_the_window() -> None:
    assert report_days(TODAY, d(1), 7) == [d(13), d(14), d(15), d(16), d(17), d(18), d(19), TODAY]
    assert window_start(TODAY, 7) == d(13)


def test_zero_turns_catch_up_off_but_keeps_yesterday() -> None:
    assert report_days(TODAY, d(10), 0) == [d(19), TODAY]
    assert report_days(TODAY, d(19), 0) == [TODAY]


def test_a_fresh_install_starts_with_yesterday_and_today_only() -> None:
    assert report_days(TODAY, None, 7) == [d(19), TODAY]


def test_days_already_finalized_out_of_order_are_not_sent_again() -> None:
    assert report_days(TODAY, d(15), 7, finalized=[d(17), d(18)]) == [d(16), d(19), TODAY]


def test_the_marker_moves_only_over_days_that_follow_it() -> None:
    # D-3 (the 17th) succeeded, the 16th failed: the next run must retry the 16th, and only the 16th and later.
    state = advance(TODAY, d(15), 7, [d(17), d(19)])
    assert state.last_finalized == d(15)
    assert state.finalized == [d(17), d(19)]
    assert report_days(TODAY, state.last_finalized, 7, finalized=state.finalized) == [d(16), d(18), TODAY]

    state = advance(TODAY, state.last_finalized, 7, [d(16), d(18)], finalized=state.finalized)
    assert (state.last_finalized, state.finalized, state.unsynced) == (d(19), [], [])


def test_applying_the_same_run_twice_changes_nothing_more() -> None:
    once = advance(TODAY, d(1), 7, [d(13), d(14), d(16)])
    twice = advance(
        TODAY, once.last_finalized, 7, [d(13), d(14), d(16)], finalized=once.finalized, unsynced=once.unsynced
    )
    assert once == twice


def test_days_older_than_the_window_are_left_behind_and_reported() -> None:
    state = advance(TODAY, d(8), 7, [d(13), d(14)])
    assert state.last_finalized == d(14)
    assert state.unsynced == [d(9), d(10), d(11), d(12)]
    view = catch_up(TODAY, state.last_finalized, 7, finalized=state.finalized, unsynced=state.unsynced)
    assert view.beyond_window == [d(9), d(10), d(11), d(12)]
    assert view.pending == [d(15), d(16), d(17), d(18), d(19)]
    assert view.oldest_unfinalized == d(9)
    assert view.catching_up
    assert view.backfills() == [(d(9), d(12))]


def test_a_backfill_clears_the_days_it_finalized_from_the_left_behind_list() -> None:
    state = advance(TODAY, d(19), 7, [d(10), d(11)], unsynced=[d(9), d(10), d(11), d(12)], planned=False)
    assert state.unsynced == [d(9), d(12)]
    assert state.last_finalized == d(19)


def test_the_view_counts_days_older_than_the_window_before_any_run_saw_them() -> None:
    view = catch_up(TODAY, d(1), 7)
    assert view.beyond_window == [d(day) for day in range(2, 13)]
    assert view.pending[0] == d(13)
    assert not catch_up(TODAY, d(19), 7).catching_up
    assert not catch_up(TODAY, d(18), 7).catching_up  # yesterday not yet final: the everyday state
    assert catch_up(TODAY, d(18), 7).oldest_unfinalized == d(19)


def test_backfills_are_split_into_ranges_the_trigger_accepts() -> None:
    long_gap = [date(2026, 1, 1) + timedelta(days=i) for i in range(40)] + [date(2026, 3, 1)]
    view = catch_up(date(2026, 6, 1), date(2026, 5, 31), 7, unsynced=long_gap)
    assert view.backfills() == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 9)),
        (date(2026, 3, 1), date(2026, 3, 1)),
    ]


def test_a_fresh_install_keeps_no_marker_after_a_backfill_of_an_old_day() -> None:
    state = advance(TODAY, None, 7, [d(1)], planned=False)
    assert state.last_finalized is None
    assert advance(TODAY, None, 7, [], planned=True).last_finalized == d(18)
