"""Realistic, deterministic LeadPier statistics rows for tests, the sandbox and the benchmark."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from datetime import date
from typing import Any

# The built-in domain-code table (docs/REFERENCE.md); names past the documented ones are stand-ins.
KNOWN_DOMAINS: dict[str, str] = {
    "lbe": "loanboostexpress.com",
    "sle": "secureloanedge.com",
    "rct": "rapidcashtrack.com",
    "pfe": "primefundexpress.com",
    "afw": "advancefundwav.com",
    "str": "starterloan.com",
    "lv": "loanvista.com",
    "ivr": "investorreach.com",
    "fz": "fundzone.com",
    "fns": "financesource.com",
    "cfl": "capitalfastlane.com",
    "cap": "cap.example.com",
    "efp": "efp.example.com",
    "fep": "fep.example.com",
    "rfb": "rfb.example.com",
}

# The shape LE accepts: <platform>[-<variant>]_<MMDD>-<domain code>-e<send number>.
CAMPAIGN_CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)?_\d{4}-([a-z0-9]+)-e\d+$", re.IGNORECASE)

PLATFORMS = ("mta", "spg", "mtb", "mtc", "spx")
VARIANTS = ("", "", "b", "c", "d")  # no variant is the most common case
UNKNOWN_DOMAIN_CODES = ("xyz", "qqq", "zzz", "abc", "nwd", "tst")

NUMBER_FIELDS = (
    "visitors", "totalLeads", "soldLeads", "totalRevenue",
    "conversionRate", "soldRate", "EPL", "EPV",
)  # fmt: skip

CodeMaker = Callable[[random.Random, str, int], str]

SHARE_INVALID_FORMAT = 0.10
SHARE_UNKNOWN_DOMAIN = 0.05
SHARE_ZERO_VISITORS = 0.05
SHARE_NUMERIC_STRINGS = 0.03
SHARE_MISSING_OR_NULL = 0.03


def generate_rows(n: int, day: date, seed: int = 0, *, include_unreadable: bool = False) -> list[dict[str, Any]]:
    """`n` statistics rows for `day`, as LeadPier's sources endpoint returns them.

    The mix is fixed by the shares above (rounded, at least one of each kind once n >= 10):
    invalid formats, unknown domain codes, rows with no visitors, numbers sent as strings,
    and rows with a missing or null number (never `visitors`, so the zero-visitor share
    stays exact). With `include_unreadable`, up to three rows are replaced by ones the app
    must reject: no `source`, an empty `source`, and a count of "n/a".
    Sources are unique per day, ignoring letter case. Same arguments, same rows.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(f"leadpier-rows/{seed}/{day.isoformat()}")
    mmdd = day.strftime("%m%d")

    indices = list(range(n))
    rng.shuffle(indices)
    invalid_format = _take(indices, _share(n, SHARE_INVALID_FORMAT))
    unknown_domain = _take(indices, _share(n, SHARE_UNKNOWN_DOMAIN))

    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if i in invalid_format:
            make = _invalid_format_code
        elif i in unknown_domain:
            make = _unknown_domain_code
        else:
            make = _valid_code
        rows.append({"source": _unique(make, rng, mmdd, n, seen), **_figures(rng)})

    everyone = range(n)
    for i in _pick(rng, everyone, _share(n, SHARE_ZERO_VISITORS)):
        rows[i].update(_zero_figures())
    for i in _pick(rng, everyone, _share(n, SHARE_NUMERIC_STRINGS)):
        _stringify_numbers(rng, rows[i])
    for i in _pick(rng, everyone, _share(n, SHARE_MISSING_OR_NULL)):
        _drop_a_number(rng, rows[i])
    if include_unreadable:
        _make_unreadable(rng, rows)
    return rows


def _share(n: int, share: float) -> int:
    count = round(n * share)
    return max(count, 1) if n >= 10 else count


def _take(pool: list[int], count: int) -> set[int]:
    taken = set(pool[:count])
    del pool[:count]
    return taken


def _pick(rng: random.Random, population: range, count: int) -> list[int]:
    return rng.sample(population, min(count, len(population)))


def _unique(make: CodeMaker, rng: random.Random, mmdd: str, n: int, seen: set[str]) -> str:
    while True:
        source = make(rng, mmdd, n)
        if source.lower() not in seen:
            seen.add(source.lower())
            return source


def _send_number(rng: random.Random, n: int) -> int:
    # Widen the range with n so that large benchmark days still find unique codes quickly.
    return rng.randint(1, max(9, n // 40))


def _vary_case(rng: random.Random, code: str, domain: str) -> str:
    roll = rng.random()
    if roll < 0.05:
        return code.upper()
    if roll < 0.10:
        return code.replace(f"-{domain}-", f"-{domain.upper()}-")
    if roll < 0.13:
        return code.replace(f"-{domain}-", f"-{domain.capitalize()}-")
    return code


def _campaign_code(rng: random.Random, mmdd: str, domain: str, n: int) -> str:
    platform = rng.choice(PLATFORMS)
    variant = rng.choice(VARIANTS)
    prefix = f"{platform}-{variant}" if variant else platform
    code = f"{prefix}_{mmdd}-{domain}-e{_send_number(rng, n)}"
    return _vary_case(rng, code, domain)


def _valid_code(rng: random.Random, mmdd: str, n: int) -> str:
    return _campaign_code(rng, mmdd, rng.choice(list(KNOWN_DOMAINS)), n)


def _unknown_domain_code(rng: random.Random, mmdd: str, n: int) -> str:
    return _campaign_code(rng, mmdd, rng.choice(UNKNOWN_DOMAIN_CODES), n)


def _invalid_format_code(rng: random.Random, mmdd: str, n: int) -> str:
    def token(length: int) -> str:
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))

    shapes = (
        lambda: f"{rng.choice(('vr', 'nl', 'tx'))}-b-{token(6)}-t-{token(6)}-{mmdd}",
        lambda: f"{rng.choice(PLATFORMS)}-{mmdd}-{rng.choice(list(KNOWN_DOMAINS))}",
        lambda: f"{rng.choice(PLATFORMS)}_{mmdd}_{token(4).lower()}",
        lambda: f"organic-{token(8).lower()}",
    )
    code = rng.choice(shapes)()
    assert not CAMPAIGN_CODE.match(code), code
    return code


def _figures(rng: random.Random) -> dict[str, Any]:
    visitors = max(1, int(rng.lognormvariate(5.5, 1.2)))
    leads = int(visitors * rng.uniform(0.0, 0.25))
    sold = int(leads * rng.uniform(0.2, 0.9))
    revenue = round(sold * rng.uniform(4.0, 60.0), 2)
    return {
        "visitors": visitors,
        "totalLeads": leads,
        "soldLeads": sold,
        "totalRevenue": revenue,
        "conversionRate": round(leads / visitors * 100, 2),
        "soldRate": round(sold / leads * 100, 2) if leads else 0.0,
        "EPL": round(revenue / leads, 2) if leads else 0.0,
        "EPV": round(revenue / visitors, 2),
    }


def _zero_figures() -> dict[str, Any]:
    return {field: 0 if field in {"visitors", "totalLeads", "soldLeads"} else 0.0 for field in NUMBER_FIELDS}


def _stringify_numbers(rng: random.Random, row: dict[str, Any]) -> None:
    for field in rng.sample(NUMBER_FIELDS, 2):
        if isinstance(row.get(field), (int, float)):
            row[field] = str(row[field])


def _drop_a_number(rng: random.Random, row: dict[str, Any]) -> None:
    field = rng.choice(NUMBER_FIELDS[1:])
    if rng.random() < 0.5:
        row.pop(field, None)
    else:
        row[field] = None


def _make_unreadable(rng: random.Random, rows: list[dict[str, Any]]) -> None:
    spoilers: tuple[Callable[[dict[str, Any]], object], ...] = (
        lambda row: row.pop("source"),
        lambda row: row.update(source=""),
        lambda row: row.update(totalLeads="n/a"),
    )
    for index, spoil in zip(rng.sample(range(len(rows)), min(3, len(rows))), spoilers, strict=False):
        spoil(rows[index])
