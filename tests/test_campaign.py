"""Campaign codes: the parser reads the usual shape, names the reason when it cannot, and never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.rules.campaign import (
    BUILTIN_DOMAIN_CODES,
    CampaignCode,
    UnmatchedCode,
    check_campaign_code,
    parse_campaign_code,
)

DOMAINS = BUILTIN_DOMAIN_CODES


def test_the_documented_examples_parse_into_their_parts() -> None:
    code = parse_campaign_code("mta-b_0213-lbe-e2", DOMAINS)

    assert code == CampaignCode(
        raw="mta-b_0213-lbe-e2", platform="mta", variant="b", core="0213-lbe-e2", month=2, day=13,
        domain_code="lbe", domain="loanboostexpress.com", send_number=2,
    )  # fmt: skip
    assert isinstance(parse_campaign_code("mta_0314-ivr-e3", DOMAINS), CampaignCode)
    spg = parse_campaign_code("spg_0301-afw-e1", DOMAINS)
    assert isinstance(spg, CampaignCode) and spg.variant is None and spg.domain == "AdvanceFundWav"


def test_codes_are_read_in_any_letter_case() -> None:
    code = parse_campaign_code("MTA-B_0213-LBE-E2", DOMAINS)

    assert isinstance(code, CampaignCode)
    assert (code.platform, code.variant, code.domain_code, code.core) == ("mta", "b", "lbe", "0213-lbe-e2")
    assert code.raw == "MTA-B_0213-LBE-E2"


@pytest.mark.parametrize(
    "source",
    [
        "vr-b-oZaR5m-t-mlYq6o-0213",
        "mta-0213-lbe",
        "mta_0213_abcd",
        "organic-abcdefgh",
        "mta_1313-lbe-e1",  # month 13
        "mta_0200-lbe-e1",  # day 0
        "mta_0213-lbe-2",
        "mta-b-c_0213-lbe-e2",
        "",
        "mta_0213-lbe-e2 trailing",
    ],
)
def test_sources_that_do_not_follow_the_shape_are_an_invalid_format(source: str) -> None:
    assert parse_campaign_code(source, DOMAINS) == UnmatchedCode(raw=source, reason="invalid_format")


def test_a_well_formed_code_with_an_unlisted_domain_is_an_unknown_domain() -> None:
    assert parse_campaign_code("mta_0213-xyz-e1", DOMAINS) == UnmatchedCode(
        raw="mta_0213-xyz-e1", reason="unknown_domain"
    )


def test_the_domain_table_passed_in_decides_what_is_known() -> None:
    domains = {**DOMAINS, "xyz": "xyz.example.com"}
    domains.pop("lbe")

    added = parse_campaign_code("mta_0213-xyz-e1", domains)

    assert isinstance(added, CampaignCode) and added.domain == "xyz.example.com"
    assert parse_campaign_code("mta_0213-lbe-e1", domains).reason == "unknown_domain"  # type: ignore[union-attr]


@pytest.mark.parametrize("source", [None, 42, 4.2, b"mta_0213-lbe-e2", ["mta_0213-lbe-e2"], {"a": 1}, object()])
def test_non_text_sources_are_an_invalid_format(source: Any) -> None:
    result = parse_campaign_code(source, DOMAINS)

    assert isinstance(result, UnmatchedCode) and result.reason == "invalid_format"


def test_a_send_number_with_thousands_of_digits_does_not_raise() -> None:
    source = "mta_0213-lbe-e" + "9" * 5000

    result = parse_campaign_code(source, DOMAINS)

    assert isinstance(result, (CampaignCode, UnmatchedCode))
    assert result.raw == source


def test_an_integer_with_thousands_of_digits_does_not_raise() -> None:
    result = parse_campaign_code(10**5000, DOMAINS)

    assert isinstance(result, UnmatchedCode) and result.reason == "invalid_format"


# --------------------------------------------------------------------------- properties


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


anything = st.one_of(
    st.text(),
    st.text(alphabet="abcdefmtlv_-0123456789EL"),
    st.binary(),
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
    st.builds(_Unprintable),
)


@settings(max_examples=500)
@given(source=anything)
def test_the_parser_never_raises_whatever_it_is_given(source: object) -> None:
    result = parse_campaign_code(source, DOMAINS)

    assert isinstance(result, (CampaignCode, UnmatchedCode))
    if isinstance(result, UnmatchedCode):
        assert result.reason in ("invalid_format", "unknown_domain")
        assert isinstance(result.raw, str)


def _any_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def campaign_codes(draw: st.DrawFn, domain_codes: st.SearchStrategy[str]) -> tuple[str, dict[str, Any]]:
    platform = draw(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True))
    variant = draw(st.none() | st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 31))
    domain = draw(domain_codes)
    send = draw(st.integers(0, 10**6))
    prefix = f"{platform}-{variant}" if variant else platform
    code = f"{prefix}_{month:02d}{day:02d}-{domain}-e{send}"
    parts = {"platform": platform, "variant": variant, "month": month, "day": day, "domain_code": domain,
             "send_number": send, "core": f"{month:02d}{day:02d}-{domain}-e{send}"}  # fmt: skip
    return _any_case(draw, code), parts


@settings(max_examples=300)
@given(generated=campaign_codes(st.sampled_from(sorted(DOMAINS))))
def test_every_well_formed_code_with_a_known_domain_parses_with_the_right_domain(
    generated: tuple[str, dict[str, Any]],
) -> None:
    source, parts = generated

    result = parse_campaign_code(source, DOMAINS)

    assert isinstance(result, CampaignCode)
    assert result.domain == DOMAINS[parts["domain_code"]]
    assert {name: getattr(result, name) for name in parts} == parts
    assert result.raw == source


@settings(max_examples=200)
@given(generated=campaign_codes(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True).filter(lambda c: c not in DOMAINS)))
def test_every_well_formed_code_with_an_unlisted_domain_is_unknown_domain(
    generated: tuple[str, dict[str, Any]],
) -> None:
    source, _ = generated

    assert parse_campaign_code(source, DOMAINS) == UnmatchedCode(raw=source, reason="unknown_domain")


@settings(max_examples=500)
@given(
    source=st.one_of(
        anything,
        campaign_codes(st.sampled_from(sorted(DOMAINS))).map(lambda generated: generated[0]),
        campaign_codes(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)).map(lambda generated: f" {generated[0]}\n"),
        st.from_regex(r"[a-z]{1,3}_\d{4}-(lbe|xyz)-e\d{1,12}", fullmatch=True),
    )
)
def test_the_check_gives_the_parsers_verdict_without_the_parts(source: object) -> None:
    parsed = parse_campaign_code(source, DOMAINS)

    assert check_campaign_code(source, DOMAINS) == (parsed if isinstance(parsed, UnmatchedCode) else None)
