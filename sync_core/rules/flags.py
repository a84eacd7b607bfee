"""The one true/false grammar of the app's settings, standard library only (function_app.py reads it at load)."""

from __future__ import annotations

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def parse_flag(text: str) -> bool:
    """`true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case; ValueError for anything else."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("must be true or false (also 1/0, yes/no, on/off)")


def is_flag(text: str) -> bool:
    return text.strip().lower() in TRUE_WORDS | FALSE_WORDS


def is_true(text: str | None) -> bool:
    """An optional flag read leniently (telemetry, the host's own switches): only a true word is true."""
    return (text or "").strip().lower() in TRUE_WORDS
