"""Text from outside the app (LeadPier, LE, callers) made fit to keep and to log: one printable line, cut to a bound."""

from __future__ import annotations

import re

# What a kept text may hold, in characters: a campaign code or a row's source (samples, unmatched codes, invalid
# rows), and a sentence (an error, LE's message, one of LE's errors).
CODE_CHARS = 200
MESSAGE_CHARS = 500

# Anything that could end a line (in a log, a terminal or a splitlines() reader), move the cursor, recolour or
# retitle a terminal, reorder text (bidi controls) or not be encoded as UTF-8 at all (lone surrogates).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")  # "\n" -> "\\n", ESC -> "\\x1b", U+2028 -> "\\u2028"


def one_line(value: object, limit: int | None = MESSAGE_CHARS) -> str:
    """`value` as one line of printable text: control and line-breaking characters written as escapes (`\\n`,
    `\\x1b`), and, past `limit` characters, cut with a note of the original length. The one way outside text enters
    a log line, a trace, an error sentence or a kept field; applied twice, it changes nothing more."""
    text = value if isinstance(value, str) else _text_of(value)
    if limit is None:
        return _UNSAFE.sub(_escaped, text)
    escaped = _UNSAFE.sub(_escaped, text[:limit])  # escaping only lengthens: the start is all a cut can keep
    if len(text) <= limit and len(escaped) <= limit:
        return escaped
    note = f"...[cut, {len(text)} characters]"
    keep = max(limit - len(note), 0)
    head = escaped[:keep]
    # Never leave half an escape (a lone "\\x1" reads as a different character).
    tail = head.rfind("\\")
    if tail != -1 and tail >= keep - 6:
        head = head[:tail]
    return head + note


def _text_of(value: object) -> str:
    """str() of anything: some objects refuse (a huge int), and that must not fail the line it was meant for."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
