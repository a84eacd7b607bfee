"""What a run's pages held besides the LE records it sends: unreadable rows and unmatched campaign codes, counted
exactly and logged within bounds."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sync_core.rules.campaign import check_campaign_code
from sync_core.rules.transform import TransformResult
from sync_core.state.records import SAMPLE_LIMIT
from sync_core.untrusted import CODE_CHARS, one_line

# A run's lines keep the one logger name the run log and its queries know, whichever module writes them.
log = logging.getLogger("sync_core.pipeline")

EXAMPLES_LOGGED = 3  # unmatched codes named per reason in a day's summary line


@dataclass
class DayFindings:
    """What one day's pages held besides records: invalid rows, and unmatched codes by reason with a few examples."""

    invalid: int = 0
    invalid_unlogged: int = 0
    unmatched: dict[str, int] = field(default_factory=dict)
    unmatched_examples: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Tally:
    """What a run counts across its pages and days besides the per-day figures: unmatched codes, bad rows, LE errors."""

    unmatched_counts: dict[str, int] = field(default_factory=dict)
    unmatched_codes: dict[str, list[str]] = field(default_factory=dict)
    code_counts: dict[str, Counter[str]] = field(default_factory=dict)  # every code met; the top ones are kept
    invalid_samples: list[str] = field(default_factory=list)
    le_errors: list[str] = field(default_factory=list)


def check_page(part: TransformResult, day: DayFindings, tally: Tally, domain_codes: Mapping[str, str]) -> None:
    """Tally one page's invalid rows and unmatched campaign codes (the records are sent all the same); the first
    invalid rows of a run are logged one by one, the rest and the unmatched codes in a summary per day."""
    for bad in part.invalid:
        day.invalid += 1
        source, reason = one_line(bad.source, CODE_CHARS), one_line(bad.reason, CODE_CHARS)
        if len(tally.invalid_samples) < SAMPLE_LIMIT:
            log.warning("Invalid row left out (%s): source %s", reason, source)
            tally.invalid_samples.append(f"{source}: {reason}")
        else:
            day.invalid_unlogged += 1
    for le_record in part.records:
        parsed = check_campaign_code(le_record.campaign_code, domain_codes)
        if parsed is not None:
            code = one_line(parsed.raw, CODE_CHARS)
            tally.unmatched_counts[parsed.reason] = tally.unmatched_counts.get(parsed.reason, 0) + 1
            tally.code_counts.setdefault(parsed.reason, Counter())[code] += 1
            samples = tally.unmatched_codes.setdefault(parsed.reason, [])
            if len(samples) < SAMPLE_LIMIT and code not in samples:
                samples.append(code)
            day.unmatched[parsed.reason] = day.unmatched.get(parsed.reason, 0) + 1
            examples = day.unmatched_examples.setdefault(parsed.reason, [])
            if len(examples) < EXAMPLES_LOGGED and code not in examples:
                examples.append(code)


def log_findings(day: date, findings: DayFindings) -> None:
    """A bounded number of lines however many rows were invalid or codes unmatched."""
    if findings.invalid_unlogged:
        log.warning(
            "%s: %d more invalid rows left out (only the first %d of a run are logged one by one)",
            day.isoformat(),
            findings.invalid_unlogged,
            SAMPLE_LIMIT,
        )
    if findings.unmatched:
        by_reason = "; ".join(
            f"{reason} {count} (e.g. {', '.join(findings.unmatched_examples[reason])})"
            for reason, count in sorted(findings.unmatched.items())
        )
        log.warning(
            "%s: %d campaign codes unmatched, sent anyway (LE decides): %s",
            day.isoformat(),
            sum(findings.unmatched.values()),
            by_reason,
        )
