"""Property tests: arbitrary JSON in LeadPier rows and sources never raises, and each bad row is counted once."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_core.rules.campaign import BUILTIN_DOMAIN_CODES, CampaignCode, UnmatchedCode, parse_campaign_code
from sync_core.rules.transform import LeRecord, transform_rows

NUMBER_FIELDS = ("visitors", "totalLeads", "soldLeads", "totalRevenue", "conversionRate", "soldRate", "EPL", "EPV")
KNOWN_KEYS = ("source", *NUMBER_FIELDS)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # past float range
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**63, 2**64 + 1, 10**400, -(10**309), float("nan"), float("inf")]),
    st.text(),
    st.sampled_from(
        [
            "",
            " ",
            "12",
            "1,234.5",
            "1e400",
            "-1e400",
            "nan",
            "NaN",
            "inf",
            "-Infinity",
            "0x10",
            "1_000",
            "n/a",
            "12abc",
            "\u0661\u0662",
            "  7  ",
            "9" * 400,
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Rows as LeadPier could send them: dicts with any subset of the known keys (holding anything) and extra keys.
rows = st.one_of(
    st.fixed_dictionaries({}, optional={key: json_values for key in KNOWN_KEYS}).flatmap(
        lambda known: st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
            lambda extra: {**extra, **known}
        )
    ),
    json_values,  # a row that is not even an object
)


def _is_readable_number(value: Any) -> bool:
    """A number or a numeric string; missing or null counts as 0."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        try:
            return math.isfinite(float(value))
        except OverflowError:
            return False
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return True
        try:
            return math.isfinite(float(text))
        except (ValueError, OverflowError):
            return False
    return False


def _source_ok(row: Any) -> bool:
    return isinstance(row, dict) and isinstance(row.get("source"), str) and bool(row["source"].strip())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, max_size=12))
def test_any_rows_transform_without_raising_and_each_row_is_counted_once(batch: list[Any]) -> None:
    result = transform_rows(batch)

    # Every row lands in exactly one place: a record, left out for no visitors, or invalid.
    assert len(result.records) + result.without_visitors + len(result.invalid) == len(batch)
    for record in result.records:
        assert isinstance(record, LeRecord)
        assert record.clicks >= 1
        for number in (record.lead_percent, record.sale_percent, record.revenue, record.epc, record.rpc):
            assert math.isfinite(number)
    for bad in result.invalid:
        assert isinstance(bad.source, str) and bad.source
        assert isinstance(bad.reason, str) and bad.reason and "\n" not in bad.reason

    # Unreadable rows (step 5 of a run) are always among the invalid ones, each exactly once.
    unreadable = [
        row for row in batch if not _source_ok(row) or not all(_is_readable_number(row.get(f)) for f in NUMBER_FIELDS)
    ]
    readable = [row for row in batch if row not in unreadable]
    assert len(result.invalid) >= len(unreadable)
    # Readable rows are invalid only when a figure is beyond 2-decimal money (decimal's 28 digits).
    out_of_range = [bad for bad in result.invalid if bad.reason == "a figure is out of range"]
    assert len(result.invalid) == len(unreadable) + len(out_of_range)
    assert len(result.records) + result.without_visitors + len(out_of_range) == len(readable)


sane_number = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda x: round(x, 2)),
    st.integers(min_value=0, max_value=10**9).map(str),
)
good_rows = st.fixed_dictionaries(
    {"source": st.text(min_size=1).filter(str.strip)},
    optional={key: st.none() | sane_number for key in NUMBER_FIELDS},
)


@settings(max_examples=200)
@given(st.lists(good_rows, max_size=10), st.lists(rows, max_size=10), st.randoms(use_true_random=False))
def test_bad_rows_never_cost_good_ones(good: list[dict[str, Any]], bad: list[Any], shuffle: Any) -> None:
    bad = [row for row in bad if not _source_ok(row)]  # certainly unreadable: no usable source
    batch = good + bad
    shuffle.shuffle(batch)

    result = transform_rows(batch)

    with_visitors = [r for r in good if float(r.get("visitors") or 0) > 0]
    assert len(result.records) == len(with_visitors)
    assert result.without_visitors == len(good) - len(with_visitors)
    assert len(result.invalid) == len(bad)
    assert all(bad_row.source == "<no source>" or bad_row.source for bad_row in result.invalid)


@settings(max_examples=400)
@given(json_values)
def test_campaign_parser_takes_anything(source: Any) -> None:
    parsed = parse_campaign_code(source, BUILTIN_DOMAIN_CODES)
    assert isinstance(parsed, (CampaignCode, UnmatchedCode))
    if isinstance(parsed, UnmatchedCode):
        assert parsed.reason in ("invalid_format", "unknown_domain")
        assert isinstance(parsed.raw, str)
    else:
        assert isinstance(source, str)
        assert parsed.domain_code in BUILTIN_DOMAIN_CODES


codes = st.from_regex(
    r"\A[A-Za-z0-9]{1,6}(-[A-Za-z0-9]{1,4})?_(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])-[A-Za-z0-9]{1,4}-[eE][0-9]{1,3}\Z"
)


@settings(max_examples=300)
@given(codes, st.sampled_from(sorted(BUILTIN_DOMAIN_CODES)))
def test_well_formed_codes_parse_whatever_their_case(code: str, domain: str) -> None:
    prefix, rest = code.split("_", 1)
    mmdd, _, send = rest.split("-")
    known = f"{prefix}_{mmdd}-{domain.upper() if len(code) % 2 else domain}-{send}"
    parsed = parse_campaign_code(known, BUILTIN_DOMAIN_CODES)
    assert isinstance(parsed, CampaignCode), known
    assert parsed.domain_code == domain

    unknown = parse_campaign_code(code, {})
    assert unknown == UnmatchedCode(raw=code, reason="unknown_domain")


@settings(max_examples=300)
@given(st.text())
def test_any_text_parses_to_a_code_or_a_reason(text: str) -> None:
    parsed = parse_campaign_code(text, BUILTIN_DOMAIN_CODES)
    if isinstance(parsed, CampaignCode):
        assert parsed.domain_code in BUILTIN_DOMAIN_CODES
        assert 1 <= parsed.month <= 12 and 1 <= parsed.day <= 31
    else:
        assert parsed.reason in ("invalid_format", "unknown_domain")


# -- the same through a whole run: rows served by the fake LeadPier as JSON (NaN and Infinity included) --------

object_rows = st.fixed_dictionaries({}, optional={key: json_values for key in KNOWN_KEYS})


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=st.lists(object_rows, max_size=8))
def test_a_run_counts_each_bad_row_once_and_sends_the_rest(
    env: dict[str, str], leadpier: Any, le: Any, batch: list[dict[str, Any]]
) -> None:
    from tests.faults.conftest import DAY, sync

    leadpier.set_rows(DAY, batch)
    puts_before = len(le.puts)

    record = sync()

    assert record.status in ("success", "warning"), record.error
    day = record.days[0]
    assert record.fetched_rows == len(batch)
    assert day.invalid_rows + day.rows_without_visitors + day.sent_records == len(batch)
    assert record.invalid_rows >= sum(
        1 for row in batch if not _source_ok(row) or not all(_is_readable_number(row.get(f)) for f in NUMBER_FIELDS)
    )
    assert (record.status == "warning") == (record.invalid_rows > 0)
    assert len(record.invalid_samples) == min(record.invalid_rows, 20)
    new_puts = le.puts[puts_before:]
    if record.sent_records:
        assert len(new_puts) == 1 and len(new_puts[0]["body"]["data"]) == record.sent_records
    else:
        assert new_puts == []  # nothing to send: nothing sent, and still not a failure
