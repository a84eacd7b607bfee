"""Settings: the documented names and defaults, local.settings.json under the environment, errors that name the setting."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from sync_core.errors import SettingsError
from sync_core.rules.campaign import BUILTIN_DOMAIN_CODES
from sync_core.settings import AccountUrlTarget, ConnectionStringTarget, load_settings

CONNECTION = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0LWtleQ==;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
PASSWORD = "pw-Very-Secret-123"
API_KEY = "le-key-Very-Secret-456"
KEY_VAULT = "@Microsoft.KeyVault(SecretUri=https://vault.vault.azure.net/secrets/leadpier-password/)"


def minimal(**overrides: str) -> dict[str, str]:
    env = {
        "AzureWebJobsStorage": CONNECTION,
        "LEADPIER_USERNAME": "ops@example.com",
        "LEADPIER_PASSWORD": PASSWORD,
        "LE_API_URL": "https://le.example.com/email_dashboard/stats/le_api.php",
    }
    env.update(overrides)
    return env


def error_for(env: dict[str, str], cwd: Path) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env, cwd)
    return str(caught.value)


def test_defaults_are_the_ones_spec_lists(tmp_path: Path) -> None:
    settings = load_settings(minimal(), tmp_path)

    assert str(settings.leadpier_base_url).rstrip("/") == "https://webapi.leadpier.com"
    assert settings.leadpier_page_size == 1000
    assert settings.leadpier_token_ttl_minutes == 120
    assert settings.timezone_name == "Asia/Kolkata" and str(settings.timezone) == "Asia/Kolkata"
    assert settings.schedule == "0 */10 * * * *"
    assert settings.run_on_startup is False and settings.dry_run is False
    assert settings.run_deadline_seconds == 480
    assert settings.http_timeout_seconds == 30
    assert settings.le_api_key is None
    assert settings.domain_codes == BUILTIN_DOMAIN_CODES
    assert settings.storage.container == "leadpier-sync"
    assert "Chrome/" in settings.leadpier_user_agent


def test_every_setting_is_read_by_its_app_setting_name(tmp_path: Path) -> None:
    env = minimal(
        LEADPIER_BASE_URL="http://127.0.0.1:9999", LEADPIER_USER_AGENT="agent/1", LEADPIER_PAGE_SIZE="50",
        LEADPIER_TOKEN_TTL_MINUTES="7", LE_API_KEY=API_KEY, SYNC_TIMEZONE="Europe/London",
        SYNC_SCHEDULE="0 0 * * * *", SYNC_RUN_ON_STARTUP="true", SYNC_RUN_DEADLINE_SECONDS="60",
        SYNC_DRY_RUN="1", HTTP_TIMEOUT_SECONDS="2.5", SYNC_STATE_CONTAINER="my-state",
    )  # fmt: skip

    settings = load_settings(env, tmp_path)

    assert str(settings.leadpier_base_url).startswith("http://127.0.0.1:9999")
    assert settings.leadpier_user_agent == "agent/1"
    assert (settings.leadpier_page_size, settings.leadpier_token_ttl_minutes) == (50, 7)
    assert settings.le_api_key is not None and settings.le_api_key.get_secret_value() == API_KEY
    assert settings.timezone_name == "Europe/London"
    assert settings.schedule == "0 0 * * * *"
    assert settings.run_on_startup is True and settings.dry_run is True
    assert (settings.run_deadline_seconds, settings.http_timeout_seconds) == (60, 2.5)
    assert settings.storage.container == "my-state"


def test_the_environment_wins_over_local_settings_json(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"SYNC_TIMEZONE": "Europe/London", "LEADPIER_PAGE_SIZE": "10"}})
    )

    settings = load_settings(minimal(SYNC_TIMEZONE="Asia/Kolkata"), tmp_path)

    assert settings.timezone_name == "Asia/Kolkata"
    assert settings.leadpier_page_size == 10  # only in the file: read from it


def test_local_settings_json_alone_is_enough(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": minimal()}))

    settings = load_settings({}, tmp_path)

    assert settings.leadpier_username == "ops@example.com"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYNC_TIMEZONE", "Mars/Olympus_Mons"),
        ("SYNC_SCHEDULE", "*/10 * * * *"),
        ("SYNC_SCHEDULE", "every ten minutes"),
        ("LEADPIER_PAGE_SIZE", "abc"),
        ("LEADPIER_PAGE_SIZE", "0"),
        ("LEADPIER_TOKEN_TTL_MINUTES", "two hours"),
        ("HTTP_TIMEOUT_SECONDS", "fast"),
        ("HTTP_TIMEOUT_SECONDS", "0"),
        ("SYNC_RUN_DEADLINE_SECONDS", "-1"),
        ("SYNC_DRY_RUN", "perhaps"),
        ("SYNC_DOMAIN_CODES", "lbe=loanboostexpress.com"),
        ("SYNC_DOMAIN_CODES", '["lbe"]'),
        ("SYNC_DOMAIN_CODES", '{"lbe": 3}'),
        ("LE_API_URL", "not a url"),
        ("SYNC_STATE_CONTAINER", "Bad_Name"),
        ("SYNC_PYTHON_VERSION", "python3.13"),
        ("SYNC_PYTHON_VERSION", "3"),
    ],
)
def test_an_invalid_value_is_an_error_naming_the_setting(tmp_path: Path, name: str, value: str) -> None:
    message = error_for(minimal(**{name: value}), tmp_path)

    assert name in message
    assert "Traceback" not in message


@pytest.mark.parametrize("name", ["LEADPIER_USERNAME", "LEADPIER_PASSWORD", "LE_API_URL", "AzureWebJobsStorage"])
def test_a_missing_required_setting_is_named(tmp_path: Path, name: str) -> None:
    env = minimal()
    del env[name]

    assert name in error_for(env, tmp_path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    env = minimal(SYNC_TIMEZONE="Nowhere/Land", LEADPIER_PAGE_SIZE="x")
    del env["LE_API_URL"]

    message = error_for(env, tmp_path)

    assert all(name in message for name in ("SYNC_TIMEZONE", "LEADPIER_PAGE_SIZE", "LE_API_URL"))


def test_errors_never_echo_a_secret(tmp_path: Path) -> None:
    env = minimal(LE_API_KEY=API_KEY, SYNC_TIMEZONE="Nowhere/Land", HTTP_TIMEOUT_SECONDS="x")
    del env["LEADPIER_USERNAME"]

    message = error_for(env, tmp_path)

    for secret in (PASSWORD, API_KEY, CONNECTION, "c2VjcmV0LWtleQ=="):
        assert secret not in message
    assert "LEADPIER_USERNAME" in message and "SYNC_TIMEZONE" in message


def test_an_unresolved_key_vault_reference_is_treated_as_missing(tmp_path: Path) -> None:
    message = error_for(minimal(LEADPIER_PASSWORD=KEY_VAULT), tmp_path)

    assert "LEADPIER_PASSWORD" in message and "Key Vault" in message
    assert "vault.azure.net" not in message


def test_a_blank_required_setting_is_missing(tmp_path: Path) -> None:
    assert "LEADPIER_USERNAME is missing" in error_for(minimal(LEADPIER_USERNAME="  "), tmp_path)


def test_sync_domain_codes_adds_a_code_and_null_removes_one(tmp_path: Path) -> None:
    env = minimal(SYNC_DOMAIN_CODES='{"NWD": "newdomain.com", "lbe": null, "cap": "capital.example.com"}')

    codes = load_settings(env, tmp_path).domain_codes

    assert codes["nwd"] == "newdomain.com"
    assert "lbe" not in codes
    assert codes["cap"] == "capital.example.com"
    expected = {k: v for k, v in BUILTIN_DOMAIN_CODES.items() if k not in ("lbe", "cap")}
    assert {k: v for k, v in codes.items() if k not in ("nwd", "cap")} == expected


def test_the_state_container_is_reached_by_the_first_configured_connection(tmp_path: Path) -> None:
    separate = CONNECTION.replace("127.0.0.1:1", "127.0.0.1:2")
    first = load_settings(
        minimal(SYNC_STORAGE_CONNECTION=separate, SYNC_STORAGE_ACCOUNT_URL="https://a.blob.core.windows.net"), tmp_path
    )
    second = load_settings(
        minimal(SYNC_STORAGE_ACCOUNT_URL="https://a.blob.core.windows.net/", SYNC_STORAGE_CLIENT_ID="cid"), tmp_path
    )
    identity_env = {k: v for k, v in minimal().items() if k != "AzureWebJobsStorage"}
    identity = load_settings({**identity_env, "AzureWebJobsStorage__accountName": "acct"}, tmp_path)

    assert isinstance(first.storage, ConnectionStringTarget)
    assert first.storage.connection_string is not None
    assert first.storage.connection_string.get_secret_value() == separate
    assert isinstance(second.storage, AccountUrlTarget) and isinstance(identity.storage, AccountUrlTarget)
    assert (second.storage.account_url, second.storage.client_id) == ("https://a.blob.core.windows.net", "cid")
    assert identity.storage.account_url == "https://acct.blob.core.windows.net"


def test_the_storage_description_never_shows_the_key(tmp_path: Path) -> None:
    described = load_settings(minimal(), tmp_path).storage.describe()

    assert "c2VjcmV0LWtleQ==" not in described and "127.0.0.1:1" in described


def test_the_token_ttl_is_a_duration_in_minutes(tmp_path: Path) -> None:
    settings = load_settings(minimal(LEADPIER_TOKEN_TTL_MINUTES="90"), tmp_path)

    assert timedelta(minutes=settings.leadpier_token_ttl_minutes) == timedelta(hours=1, minutes=30)
