"""The transform: LeadPier rows become LE records exactly as the LE field mapping table says."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sandbox.data import generate_rows
from sync_core.rules.transform import (
    InvalidRow,
    LePayload,
    SourceStat,
    TransformResult,
    to_le_record,
    transform_rows,
    unreadable,
)

FULL_ROW = {
    "source": "mta-b_0213-lbe-e2", "visitors": 812, "totalLeads": 97, "soldLeads": 61,
    "totalRevenue": 1234.5, "conversionRate": 11.95, "soldRate": 62.89, "EPL": 12.73, "EPV": 1.52,
    "someNewField": {"ignored": True},
}  # fmt: skip


def test_a_full_row_maps_field_by_field_as_upstream_documents() -> None:
    result = transform_rows([FULL_ROW])

    assert [asdict(r) for r in result.records] == [
        {
            "campaign_code": "mta-b_0213-lbe-e2", "clicks": 812, "leads": 97, "lead_percent": 11.95,
            "sales": 61, "sale_percent": 62.89, "revenue": 1234.5, "epc": 12.73,
            "rpc": 1.52,  # 1234.5 / 812 = 1.5203...; EPV is not used
        }
    ]  # fmt: skip
    assert result.invalid == [] and result.without_visitors == 0


def test_two_decimal_figures_round_half_up_on_the_value_as_written() -> None:
    # Binary floats would give round(1.005, 2) == 1.0 and round(2.675, 2) == 2.67.
    row = {
        "source": "mta_0213-lbe-e1", "visitors": 200, "totalLeads": 3, "soldLeads": 1,
        "totalRevenue": 1.005, "conversionRate": "2.675", "soldRate": 33.333, "EPL": 0.125, "EPV": 9,
    }  # fmt: skip

    record = transform_rows([row]).records[0]

    assert (record.revenue, record.lead_percent, record.sale_percent, record.epc) == (1.01, 2.68, 33.33, 0.13)
    assert record.rpc == 0.01  # 1.005 / 200 = 0.005025 -> 0.01


def test_rpc_is_revenue_per_visitor_rounded_half_up() -> None:
    rows = [
        {"source": "a_0101-lbe-e1", "visitors": 200, "totalRevenue": 5},  # 0.025 -> 0.03
        {"source": "a_0101-lbe-e2", "visitors": 3, "totalRevenue": 10},  # 3.333... -> 3.33
        {"source": "a_0101-lbe-e3", "visitors": 8, "totalRevenue": 0},
    ]

    assert [r.rpc for r in transform_rows(rows).records] == [0.03, 3.33, 0.0]


def test_counts_are_whole_numbers_rounded_half_up() -> None:
    row = {"source": "a_0101-lbe-e1", "visitors": "10.5", "totalLeads": 2.5, "soldLeads": "1.49"}

    record = transform_rows([row]).records[0]

    assert (record.clicks, record.leads, record.sales) == (11, 3, 1)
    assert all(isinstance(v, int) for v in (record.clicks, record.leads, record.sales))


def test_missing_and_null_numbers_count_as_zero() -> None:
    row = {"source": "spg_0301-afw-e1", "visitors": 40, "totalLeads": None, "soldRate": None}

    record = transform_rows([row]).records[0]

    assert asdict(record) == {
        "campaign_code": "spg_0301-afw-e1", "clicks": 40, "leads": 0, "lead_percent": 0.0, "sales": 0,
        "sale_percent": 0.0, "revenue": 0.0, "epc": 0.0, "rpc": 0.0,
    }  # fmt: skip


def test_numeric_strings_are_read_as_numbers() -> None:
    row = {
        "source": "mta_0314-ivr-e3", "visitors": "1,200", "totalLeads": " 97 ", "soldLeads": "61",
        "totalRevenue": "1234.5", "conversionRate": "11.95", "soldRate": "", "EPL": "12.734",
    }  # fmt: skip

    record = transform_rows([row]).records[0]

    assert (record.clicks, record.leads, record.sales, record.revenue) == (1200, 97, 61, 1234.5)
    assert (record.lead_percent, record.sale_percent, record.epc, record.rpc) == (11.95, 0.0, 12.73, 1.03)


def test_rows_with_zero_or_negative_or_missing_visitors_are_left_out_and_counted() -> None:
    rows = [
        {"source": "a_0101-lbe-e1", "visitors": 0, "totalRevenue": 10},
        {"source": "a_0101-lbe-e2", "visitors": -3},
        {"source": "a_0101-lbe-e3"},
        {"source": "a_0101-lbe-e4", "visitors": None},
        {"source": "a_0101-lbe-e5", "visitors": 1},
    ]

    result = transform_rows(rows)

    assert [r.campaign_code for r in result.records] == ["a_0101-lbe-e5"]
    assert result.without_visitors == 4 and result.invalid == []


def test_unreadable_rows_are_counted_with_their_source_and_the_rest_go_on() -> None:
    rows = [
        {"visitors": 5},
        {"source": "   ", "visitors": 5},
        {"source": "mta_0213-lbe-e9", "visitors": 5, "totalLeads": "n/a"},
        {"source": "mta_0213-lbe-e8", "visitors": True},
        {"source": "mta_0213-lbe-e7", "visitors": "inf"},
        "not a row",
        {"source": "mta_0213-lbe-e1", "visitors": 5},
    ]

    result = transform_rows(rows)

    assert [r.campaign_code for r in result.records] == ["mta_0213-lbe-e1"]
    assert [bad.source for bad in result.invalid] == [
        "<no source>", "<no source>", "mta_0213-lbe-e9", "mta_0213-lbe-e8", "mta_0213-lbe-e7", "<no source>",
    ]  # fmt: skip
    assert "totalLeads" in result.invalid[2].reason and "n/a" in result.invalid[2].reason


def test_figures_too_large_for_money_make_the_row_invalid_not_the_run_crash() -> None:
    rows = [
        {"source": "a_0101-lbe-e1", "visitors": 10, "totalRevenue": 1e300},
        {"source": "a_0101-lbe-e2", "visitors": 10**400},
        {"source": "a_0101-lbe-e3", "visitors": 10},
    ]

    result = transform_rows(rows)

    assert [r.campaign_code for r in result.records] == ["a_0101-lbe-e3"]
    assert [bad.source for bad in result.invalid] == ["a_0101-lbe-e1", "a_0101-lbe-e2"]


def test_the_le_payload_serialises_as_the_put_body() -> None:
    record = to_le_record(SourceStat.model_validate(FULL_ROW))

    body = LePayload(report_date="2026-02-13", data=[record]).model_dump(mode="json")

    assert body == {
        "report_date": "2026-02-13",
        "data": [{
            "campaign_code": "mta-b_0213-lbe-e2", "clicks": 812, "leads": 97, "lead_percent": 11.95,
            "sales": 61, "sale_percent": 62.89, "revenue": 1234.5, "epc": 12.73, "rpc": 1.52,
        }],
    }  # fmt: skip


# --------------------------------------------------------------------------- properties

NUMBER_FIELDS = ("visitors", "totalLeads", "soldLeads", "totalRevenue", "conversionRate", "soldRate", "EPL", "EPV")

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from([10**400, -(10**400), "1e400", "NaN", "-0", "1,000.5", " 7 ", "0x10", "١٢"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
numbers = st.one_of(
    json_values,
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6),
    st.from_regex(r"-?\d{1,7}(\.\d{1,4})?", fullmatch=True),
)
row_like = st.fixed_dictionaries(
    {},
    optional={"source": st.one_of(st.text(max_size=20), json_values), **{name: numbers for name in NUMBER_FIELDS}},
)
rows = st.lists(st.one_of(row_like, json_values), max_size=8)


@settings(max_examples=300)
@given(rows=rows)
def test_transform_never_raises_and_every_row_ends_up_exactly_once(rows: list[Any]) -> None:
    result = transform_rows(rows)

    assert len(result.records) + len(result.invalid) + result.without_visitors == len(rows)
    for row in rows:
        alone = transform_rows([row])
        assert sorted([len(alone.records), len(alone.invalid), alone.without_visitors]) == [0, 0, 1]


@settings(max_examples=200)
@given(
    visitors=st.integers(1, 10**7),
    revenue=st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False),
    as_string=st.booleans(),
)
def test_revenue_and_rpc_match_decimal_half_up_for_any_figures(
    visitors: int, revenue: Decimal, as_string: bool
) -> None:
    text = str(revenue)
    row = {"source": "a_0101-lbe-e1", "visitors": str(visitors) if as_string else visitors,
           "totalRevenue": text if as_string else float(text)}  # fmt: skip

    record = transform_rows([row]).records[0]

    cent = Decimal("0.01")
    assert record.revenue == float(Decimal(text).quantize(cent, ROUND_HALF_UP))
    assert record.rpc == float((Decimal(text) / visitors).quantize(cent, ROUND_HALF_UP))
    assert record.clicks == visitors


# --------------------------------------------------------------------------- the plain-row path and the model's


def _by_the_model(rows: list[Any]) -> TransformResult:
    """transform_rows as it reads when every row goes through SourceStat: the reference for the plain-row path."""
    result = TransformResult()
    for row in rows:
        try:
            stat = SourceStat.model_validate(row)
        except ValidationError as exc:
            result.invalid.append(unreadable(row, exc))
            continue
        if stat.visitors <= 0:
            result.without_visitors += 1
            continue
        try:
            result.records.append(to_le_record(stat))
        except ArithmeticError:
            result.invalid.append(InvalidRow(source=stat.source, reason="a figure is out of range"))
    return result


def _as_compared(result: TransformResult) -> tuple[Any, ...]:
    # repr tells -0.0 from 0.0 and 1 from 1.0; the types tell a str subclass from a str.
    kinds = [tuple(type(value) for value in asdict(record).values()) for record in result.records]
    return repr(result.records), kinds, result.invalid, result.without_visitors


class _Text(str):
    pass


class _Row(dict[str, Any]):
    pass


odd_figures = st.sampled_from([
    True, False, None, 0, -0.0, 0.0, -1, 10**400, -(10**400), 2**53 + 1, 10**20, 1e300, -1e300, 1e15, 1e-7,
    float("nan"), float("inf"), float("-inf"), "", "  ", "1,000.5", " 7 ", "1e400", "nan", "-inf", "n/a", "0x10",
    "١٢", "1_000", [], [1], {}, {"a": 1}, (1,), b"1", 1j, _Text("5"),
])  # fmt: skip
figures = st.one_of(
    st.integers(-(10**6), 10**7),
    st.floats(-1e7, 1e7),
    st.floats(),
    st.decimals(-(10**7), 10**7, places=3, allow_nan=False).map(float),
    st.from_regex(r" ?-?\d{1,3}(,\d{3})*(\.\d{1,4})? ?", fullmatch=True),
    odd_figures,
)
odd_sources: st.SearchStrategy[Any] = st.sampled_from(["", " ", "\t\n", " mta_0213-lbe-e1 ", "a\ud800b", _Text("mta_0213-lbe-e1"), None, 7, True, [], {}])  # fmt: skip
plain_or_odd_rows = st.fixed_dictionaries(
    {"source": st.one_of(st.text(min_size=1, max_size=20), odd_sources)},
    optional={
        **{name: figures for name in NUMBER_FIELDS},
        **{name: figures for name in ("total_leads", "sold_leads", "total_revenue", "epl", "EPV ", "extra")},
    },
)
many_rows = st.lists(
    st.one_of(
        plain_or_odd_rows,
        plain_or_odd_rows.map(lambda row: {key: value for key, value in row.items() if key != "source"}),
        plain_or_odd_rows.map(_Row),
        json_values,
    ),
    max_size=12,
)


@settings(max_examples=1000)
@given(rows=many_rows)
def test_the_plain_row_path_gives_what_the_model_gives_for_any_rows(rows: list[Any]) -> None:
    assert _as_compared(transform_rows(rows)) == _as_compared(_by_the_model(rows))


def test_a_page_of_generated_rows_gives_what_the_model_gives() -> None:
    for seed in range(3):
        page = generate_rows(1000, date(2026, 1, 31), seed=seed, include_unreadable=True)

        assert _as_compared(transform_rows(page)) == _as_compared(_by_the_model(page))
