"""The one true/false grammar: the settings model and the host's load-time read of SYNC_RUN_ON_STARTUP agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_core.errors import SettingsError
from sync_core.rules.flags import parse_flag
from sync_core.settings import load_settings
from tests.functions_helpers import load_function_app
from tests.test_settings import minimal


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        (" Yes ", True),
        ("1", True),
        ("ON", True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("Off", False),
    ],
)
def test_the_words_of_true_and_false(text: str, value: bool) -> None:
    assert parse_flag(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "2", "y", "t", "enabled"])
def test_anything_else_says_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="must be true or false"):
        parse_flag(text)


@pytest.mark.parametrize("text", ["on", "OFF", "yes", "0", "maybe", "y"])
def test_the_settings_and_the_host_read_run_on_startup_alike(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_RUN_ON_STARTUP", text)
    host = load_function_app()
    try:
        settings_value: bool | None = load_settings(minimal(SYNC_RUN_ON_STARTUP=text), tmp_path).run_on_startup
    except SettingsError as exc:
        assert "SYNC_RUN_ON_STARTUP" in str(exc)
        settings_value = None

    host_value = None if host.HOST_PROBLEMS else host.SYNC_RUN_ON_STARTUP
    assert host_value == settings_value
    timer = next(f for f in host.app.get_functions() if f.get_function_name() == "sync_timer")
    assert timer.get_trigger().run_on_startup is bool(settings_value)


def test_dry_run_takes_the_same_words(tmp_path: Path) -> None:
    assert load_settings(minimal(SYNC_DRY_RUN="on"), tmp_path).dry_run is True
    assert load_settings(minimal(SYNC_DRY_RUN="off"), tmp_path).dry_run is False
