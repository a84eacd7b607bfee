"""Campaign codes: parsing a LeadPier source into its parts, and the table of known domain codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

BUILTIN_DOMAIN_CODES: dict[str, str] = {
    "lbe": "loanboostexpress.com",
    "sle": "SecureLoanEdge",
    "rct": "RapidCashTrack",
    "pfe": "PrimeFundExpress",
    "afw": "AdvanceFundWav",
    "str": "StarterLoan",
    "lv": "LoanVista",
    "ivr": "InvestorReach",
    "fz": "FundZone",
    "fns": "FinanceSource",
    "cfl": "capitalfastlane.com",
    "cap": "cap",
    "efp": "efp",
    "fep": "fep",
    "rfb": "rfb",
}

UnmatchedReason = Literal["invalid_format", "unknown_domain"]

# <platform>[-<variant>]_<MMDD>-<domain code>-e<send number>, in any letter case.
_CODE = re.compile(
    r"(?P<platform>[a-z0-9]+)(?:-(?P<variant>[a-z0-9]+))?"
    r"_(?P<core>(?P<month>\d\d)(?P<day>\d\d)-(?P<domain>[a-z0-9]+)-e(?P<send>\d+))",
    re.IGNORECASE | re.ASCII,
)


@dataclass(frozen=True)
class CampaignCode:
    """A source that follows the campaign-code shape and names a known sending domain."""

    raw: str
    platform: str
    variant: str | None
    core: str
    month: int
    day: int
    domain_code: str
    domain: str
    send_number: int


@dataclass(frozen=True)
class UnmatchedCode:
    """A source that is not a usable campaign code, and why."""

    raw: str
    reason: UnmatchedReason


def parse_campaign_code(source: object, domains: Mapping[str, str]) -> CampaignCode | UnmatchedCode:
    """Parse one source; never raises, whatever it is given."""
    text = source if isinstance(source, str) else ""
    match = _CODE.fullmatch(text.strip())
    if not match:
        return UnmatchedCode(raw=_raw_text(source), reason="invalid_format")
    unmatched = _unmatched(text, match, domains)
    if unmatched is not None:
        return unmatched
    code = match["domain"].lower()
    return CampaignCode(
        raw=text,
        platform=match["platform"].lower(),
        variant=match["variant"].lower() if match["variant"] else None,
        core=match["core"].lower(),
        month=int(match["month"]),
        day=int(match["day"]),
        domain_code=code,
        domain=domains[code],
        send_number=int(match["send"]),
    )


def check_campaign_code(source: object, domains: Mapping[str, str]) -> UnmatchedCode | None:
    """The UnmatchedCode parse_campaign_code gives for a source, or None where it gives a CampaignCode, without
    building the parts (a run checks every record's code, 50,000 on a big day)."""
    text = source if isinstance(source, str) else ""
    match = _CODE.fullmatch(text.strip())
    if not match:
        return UnmatchedCode(raw=_raw_text(source), reason="invalid_format")
    return _unmatched(text, match, domains)


def _unmatched(text: str, match: re.Match[str], domains: Mapping[str, str]) -> UnmatchedCode | None:
    month, day = int(match["month"]), int(match["day"])
    # A send number past 9 digits is no real send (and int() refuses past 4300 digits).
    if not (1 <= month <= 12 and 1 <= day <= 31) or len(match["send"]) > 9:
        return UnmatchedCode(raw=text, reason="invalid_format")
    if match["domain"].lower() not in domains:
        return UnmatchedCode(raw=text, reason="unknown_domain")
    return None


def _raw_text(source: object) -> str:
    """The source as text for samples; str() of an arbitrary object can raise (or refuse a huge int)."""
    if isinstance(source, str):
        return source
    try:
        return str(source)[:200]
    except Exception:
        return f"<{type(source).__name__}>"
