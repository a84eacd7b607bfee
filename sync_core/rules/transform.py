"""The transform: LeadPier statistics rows into LE records, as pure functions (the mapping table in docs/REFERENCE.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator


def _number(value: Any) -> float:
    """A count or amount: a number or a numeric string; missing or null is 0; anything else is unreadable."""
    kind = type(value)
    if kind is float and math.isfinite(value):  # most figures: taken as they are
        return value  # type: ignore[no-any-return]
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise ValueError("is a boolean, not a number")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range (JSON allows any length)
            raise ValueError("is too large") from None
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not a number") from None
    else:
        raise ValueError(f"is a {type(value).__name__}, not a number")
    if not math.isfinite(number):
        raise ValueError("is not a finite number")
    return number


Number = Annotated[float, BeforeValidator(_number)]


class SourceStat(BaseModel):
    """One LeadPier statistics row, read leniently: extra fields ignored, numbers as numbers or numeric strings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str
    visitors: Number = 0.0
    total_leads: Number = Field(0.0, alias="totalLeads")
    sold_leads: Number = Field(0.0, alias="soldLeads")
    total_revenue: Number = Field(0.0, alias="totalRevenue")
    conversion_rate: Number = Field(0.0, alias="conversionRate")
    sold_rate: Number = Field(0.0, alias="soldRate")
    epl: Number = Field(0.0, alias="EPL")
    epv: Number = Field(0.0, alias="EPV")

    @field_validator("source", mode="before")
    @classmethod
    def _non_empty_source(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("source is missing or empty")
        return value


@dataclass(frozen=True, slots=True)
class LeRecord:
    """One campaign's figures as LE takes them.

    A slotted dataclass rather than a model: a run builds one per source (50,000 on a big day) from values that
    already have their types, and LePayload, the pydantic model around them, still defines and checks the JSON
    that leaves the process.
    """

    campaign_code: str
    clicks: int
    leads: int
    lead_percent: float
    sales: int
    sale_percent: float
    revenue: float
    epc: float
    rpc: float


class LePayload(BaseModel):
    """The body of one PUT: a whole report day."""

    report_date: str
    data: list[LeRecord]


@dataclass(frozen=True)
class InvalidRow:
    """A row that could not be read, with its source (as far as it has one) and why."""

    source: str
    reason: str


@dataclass
class TransformResult:
    records: list[LeRecord] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    without_visitors: int = 0


# Below this size a figure already written with at most 2 decimals (or a whole count) comes out of the Decimal
# round trip unchanged and cannot overflow its 28 digits, so the common case skips it (a run has 50,000 rows).
_EXACT_BELOW = 1e15


def _round2(value: Decimal | float) -> float:
    """Half-up to 2 decimals on the decimal value as written (1.005 -> 1.01), not on its binary approximation."""
    if type(value) is float and -_EXACT_BELOW < value < _EXACT_BELOW:
        written = repr(value)
        if "e" not in written and len(written) - written.index(".") <= 3:
            return value
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _whole(value: float) -> int:
    if type(value) is float and value.is_integer() and -_EXACT_BELOW < value < _EXACT_BELOW:
        return int(value)
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _per_visitor(revenue: float, visitors: float) -> float:
    """revenue / visitors, half-up to 2 decimals on the exact quotient of the values as written."""
    if type(visitors) is float and visitors.is_integer() and 0 < visitors < _EXACT_BELOW:
        written = repr(revenue)
        whole, point, decimals = written.partition(".")
        if point and "e" not in written and len(decimals) <= 2 and -_EXACT_BELOW < revenue < _EXACT_BELOW:
            # In whole cents over a whole number of visitors: half-up is floor((2 |cents| + v) / 2v), exact in
            # integers; the float of a whole number of cents / 100 is the float of the decimal it stands for.
            cents, per = abs(int(whole + decimals.ljust(2, "0"))), int(visitors)
            return math.copysign((2 * cents + per) // (2 * per) / 100, revenue)
    return _round2(Decimal(repr(revenue)) / Decimal(repr(visitors)))


def to_le_record(stat: SourceStat) -> LeRecord:
    """The LE field mapping; rpc is revenue per visitor. Callers pass only rows with visitors > 0."""
    return _record(
        stat.source,
        stat.visitors,
        stat.total_leads,
        stat.sold_leads,
        stat.total_revenue,
        stat.conversion_rate,
        stat.sold_rate,
        stat.epl,
    )


def _record(
    source: str,
    visitors: float,
    total_leads: float,
    sold_leads: float,
    total_revenue: float,
    conversion_rate: float,
    sold_rate: float,
    epl: float,
    *_: float,
) -> LeRecord:
    return LeRecord(
        campaign_code=source,
        clicks=_whole(visitors),
        leads=_whole(total_leads),
        lead_percent=_round2(conversion_rate),
        sales=_whole(sold_leads),
        sale_percent=_round2(sold_rate),
        revenue=_round2(total_revenue),
        epc=_round2(epl),
        rpc=_per_visitor(total_revenue, visitors),
    )


# SourceStat's figures by the keys a row gives them under, in its field order (EPV is read, not sent).
_FIGURES = ("visitors", "totalLeads", "soldLeads", "totalRevenue", "conversionRate", "soldRate", "EPL", "EPV")


def _plain_figures(row: dict[str, Any]) -> list[float] | None:
    """The figures of a row whose source is a non-empty str, as SourceStat would read them, or None when one is
    unreadable (the model then reads the row again and words the error): the same _number on the same values,
    without the model's cost per row (a run has 50,000)."""
    figures = []
    for key in _FIGURES:
        value = row.get(key)  # missing is the model's default, 0.0, as is None
        if type(value) is float and value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            figures.append(value)
        elif value is None:
            figures.append(0.0)
        else:
            try:
                figures.append(_number(value))
            except ValueError:
                return None
    return figures


def unreadable(row: Any, exc: ValidationError) -> InvalidRow:
    """A row SourceStat could not read, with the first problem: where in the row, and what."""
    problem = exc.errors()[0]
    where = ".".join(str(p) for p in problem.get("loc", ())) or "row"
    reason = str(problem.get("msg", "unreadable")).removeprefix("Value error, ")
    return InvalidRow(source=_source_of(row), reason=f"{where}: {reason}")


def _source_of(row: Any) -> str:
    source = row.get("source") if isinstance(row, Mapping) else None
    return source.strip() if isinstance(source, str) and source.strip() else "<no source>"


def transform_rows(rows: Iterable[Any]) -> TransformResult:
    """Every readable row with visitors becomes a record; unreadable rows are collected, never raised.

    A plain row (a dict with a str source and readable figures) skips the model; any other goes through SourceStat,
    which gives the same figures for a plain row and the error for the rest.
    """
    result = TransformResult()
    for row in rows:
        source: Any = row.get("source") if type(row) is dict else None
        figures = _plain_figures(row) if type(source) is str and source.strip() else None
        if figures is None:
            try:
                stat = SourceStat.model_validate(row)
            except ValidationError as exc:
                result.invalid.append(unreadable(row, exc))
                continue
            source = stat.source
            figures = [stat.visitors, stat.total_leads, stat.sold_leads, stat.total_revenue]
            figures += [stat.conversion_rate, stat.sold_rate, stat.epl]
        if figures[0] <= 0:
            result.without_visitors += 1
            continue
        try:
            result.records.append(_record(source, *figures))
        except ArithmeticError:  # a figure too large for 2-decimal money (decimal precision is 28 digits)
            result.invalid.append(InvalidRow(source=source, reason="a figure is out of range"))
    return result
