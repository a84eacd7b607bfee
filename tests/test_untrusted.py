"""sync_core.untrusted: outside text as one printable line, cut to a bound with its original length said."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from sync_core.untrusted import CODE_CHARS, MESSAGE_CHARS, one_line


def test_line_breaks_and_terminal_controls_are_written_as_escapes() -> None:
    assert one_line("a\nb\r\x1b]0;title\x07\u2028\u202e\x85") == "a\\nb\\r\\x1b]0;title\\x07\\u2028\\u202e\\x85"


def test_printable_text_is_left_as_it_is() -> None:
    assert one_line("mta-b_0213-lbe-e2 ünïcødé 日本 \\n") == "mta-b_0213-lbe-e2 ünïcødé 日本 \\n"


def test_long_text_is_cut_with_its_original_length() -> None:
    cut = one_line("x" * 1_000_000, CODE_CHARS)
    assert len(cut) == CODE_CHARS and cut.endswith("...[cut, 1000000 characters]") and cut.startswith("xxx")


def test_a_cut_never_leaves_half_an_escape() -> None:
    cut = one_line("\x1b" * 1000, 50)
    assert cut == "\\x1b" * 6 + "...[cut, 1000 characters]"


def test_anything_becomes_text_even_what_refuses_str() -> None:
    assert one_line(10**5000) == "<int>"
    assert one_line(None) == "None"


@given(st.text(), st.sampled_from([None, 40, CODE_CHARS, MESSAGE_CHARS]))
def test_one_line_is_one_line_within_its_bound_and_settled(text: str, limit: int | None) -> None:
    shown = one_line(text, limit)
    assert len(shown.splitlines()) <= 1
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") for c in shown)
    shown.encode("utf-8")  # raises on a lone surrogate
    if limit is not None:
        assert len(shown) <= limit
    assert one_line(shown, limit) == shown
