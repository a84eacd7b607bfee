"""Settings: read from the environment (over local.settings.json), validated once, with errors that name the setting."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from sync_core.errors import SettingsError
from sync_core.rules.campaign import BUILTIN_DOMAIN_CODES
from sync_core.rules.flags import parse_flag
from sync_core.rules.schedule import DEFAULT_SCHEDULE, validate_schedule

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
DEFAULT_TIMEZONE = "Asia/Kolkata"
DEFAULT_STATE_CONTAINER = "leadpier-sync"
LOCAL_SETTINGS_FILE = "local.settings.json"
KEY_VAULT_PREFIX = "@Microsoft.KeyVault("
# Settings whose values must never be echoed back in an error message.
SECRET_NAMES = frozenset({"LEADPIER_PASSWORD", "LE_API_KEY", "AzureWebJobsStorage", "SYNC_STORAGE_CONNECTION"})
STORAGE_ERROR = "storage_setting"  # the type of a validation error whose message already names the storage setting


def _flag(value: Any) -> Any:
    return parse_flag(value) if isinstance(value, str) else value


# A true/false setting in the grammar function_app.py reads SYNC_RUN_ON_STARTUP with at load.
Flag = Annotated[bool, BeforeValidator(_flag)]


class ConnectionStringTarget(BaseModel):
    """The state container reached with a connection string (an account key, or Azurite's development storage)."""

    model_config = ConfigDict(frozen=True)

    connection_string: SecretStr
    container: str = DEFAULT_STATE_CONTAINER

    def describe(self) -> str:
        """Where state is kept, without any key: safe for logs and /health."""
        conn = self.connection_string.get_secret_value()
        parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
        where = (
            parts.get("BlobEndpoint")
            or parts.get("AccountName")
            or ("development storage" if "UseDevelopmentStorage" in conn else "connection string")
        )
        return f"{where} / {self.container}"


class AccountUrlTarget(BaseModel):
    """The state container reached at an account URL with a managed identity (user-assigned when client_id is set)."""

    model_config = ConfigDict(frozen=True)

    account_url: str
    client_id: str | None = None
    container: str = DEFAULT_STATE_CONTAINER

    def describe(self) -> str:
        """Where state is kept: safe for logs and /health."""
        return f"{self.account_url} (managed identity) / {self.container}"


# Where the state container lives: one of the two ways to reach it, never neither.
StorageTarget = ConnectionStringTarget | AccountUrlTarget


def _target_from_app_settings(value: Any) -> Any:
    """The `storage` field from the app settings themselves (a target given as is stays as it is)."""
    if isinstance(value, Mapping):
        try:
            return load_storage_target(value)
        except SettingsError as exc:
            raise PydanticCustomError(STORAGE_ERROR, "{problem}", {"problem": str(exc)}) from None
    return value


class Settings(BaseModel):
    """Every setting of the reference's table (docs/REFERENCE.md), by its app-setting name."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    storage: Annotated[StorageTarget, BeforeValidator(_target_from_app_settings)]
    leadpier_base_url: AnyHttpUrl = Field(AnyHttpUrl("https://webapi.leadpier.com"), alias="LEADPIER_BASE_URL")
    leadpier_username: str = Field(alias="LEADPIER_USERNAME", min_length=1)
    leadpier_password: SecretStr = Field(alias="LEADPIER_PASSWORD")
    leadpier_user_agent: str = Field(DEFAULT_USER_AGENT, alias="LEADPIER_USER_AGENT", min_length=1)
    leadpier_page_size: int = Field(1000, alias="LEADPIER_PAGE_SIZE", ge=1, le=10000)
    leadpier_concurrency: int = Field(4, alias="LEADPIER_CONCURRENCY", ge=1, le=32)
    # Far above a real day (50,000 sources); past it the day fails instead of the worker running out of memory.
    leadpier_max_rows_per_day: int = Field(200_000, alias="LEADPIER_MAX_ROWS_PER_DAY", ge=1, le=10_000_000)
    leadpier_token_ttl_minutes: int = Field(120, alias="LEADPIER_TOKEN_TTL_MINUTES", ge=1)
    le_api_url: AnyHttpUrl = Field(alias="LE_API_URL")
    le_api_key: SecretStr | None = Field(None, alias="LE_API_KEY")
    timezone_name: str = Field(DEFAULT_TIMEZONE, alias="SYNC_TIMEZONE")
    schedule: str = Field(DEFAULT_SCHEDULE, alias="SYNC_SCHEDULE")
    run_on_startup: Flag = Field(False, alias="SYNC_RUN_ON_STARTUP")
    run_deadline_seconds: float = Field(480, alias="SYNC_RUN_DEADLINE_SECONDS", gt=0, le=3600)
    domain_codes: dict[str, str] = Field(default_factory=lambda: dict(BUILTIN_DOMAIN_CODES), alias="SYNC_DOMAIN_CODES")
    dry_run: Flag = Field(False, alias="SYNC_DRY_RUN")
    # Unfinalized past days a run catches up after an outage; 0 keeps to yesterday (until final) and today.
    catchup_days: int = Field(7, alias="SYNC_CATCHUP_DAYS", ge=0, le=31)
    http_timeout_seconds: float = Field(30, alias="HTTP_TIMEOUT_SECONDS", gt=0, le=300)
    # The Python the deployment asked for (the template sets it); /health compares the interpreter with it.
    python_version: str | None = Field(None, alias="SYNC_PYTHON_VERSION", pattern=r"^3\.\d{1,2}$")

    @model_validator(mode="before")
    @classmethod
    def _from_app_settings(cls, data: Any) -> Any:
        """Blank text or an unresolved Key Vault reference counts as not set (the default applies, a required
        setting is missing: such a value must never be sent); the state container is found from its own settings."""
        if not isinstance(data, Mapping):
            return data
        values = {
            name: value.strip() if isinstance(value, str) else value
            for name, value in data.items()
            if not isinstance(value, str) or _present(value) is not None
        }
        values.setdefault("storage", data)
        return values

    @field_validator("timezone_name")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as {DEFAULT_TIMEZONE}") from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        return validate_schedule(value)

    @field_validator("domain_codes", mode="before")
    @classmethod
    def _merge_domain_codes(cls, value: Any) -> dict[str, str]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError('must be a JSON object such as {"lbe": "loanboostexpress.com"}') from exc
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError('must be a JSON object such as {"lbe": "loanboostexpress.com"}')
        merged = dict(BUILTIN_DOMAIN_CODES)
        for code, domain in value.items():
            code = code.strip().lower()
            if domain is None:
                merged.pop(code, None)
            elif isinstance(domain, str) and code:
                merged[code] = domain
            else:
                raise ValueError(f"code {code!r} must map to a domain name or null")
        return merged

    @property
    def timezone(self) -> tzinfo:
        return ZoneInfo(self.timezone_name)


def _present(value: str | None) -> str | None:
    """An unresolved Key Vault reference, or blank text, counts as missing: it must never be sent."""
    if value is None or not value.strip() or value.strip().startswith(KEY_VAULT_PREFIX):
        return None
    return value.strip()


def read_environment(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    """The settings as the app sees them: local.settings.json's Values, overridden by the environment."""
    merged: dict[str, str] = {}
    path = (cwd or Path.cwd()) / LOCAL_SETTINGS_FILE
    if path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
            merged.update({k: str(v) for k, v in values.items() if v is not None})
        except (OSError, ValueError, AttributeError):
            log.warning("%s could not be read as JSON; ignoring it", LOCAL_SETTINGS_FILE)
    merged.update(os.environ if environ is None else environ)
    return merged


def load_storage_target(env: Mapping[str, str]) -> StorageTarget:
    """The state container's location: SYNC_STORAGE_CONNECTION, SYNC_STORAGE_ACCOUNT_URL, then AzureWebJobsStorage."""
    container = _present(env.get("SYNC_STATE_CONTAINER")) or DEFAULT_STATE_CONTAINER
    if not _valid_container_name(container):
        raise SettingsError(
            f"SYNC_STATE_CONTAINER {container!r} is not a valid container name "
            "(3 to 63 lowercase letters, digits and single hyphens)"
        )
    if conn := _present(env.get("SYNC_STORAGE_CONNECTION")):
        return ConnectionStringTarget(
            connection_string=_connection_string("SYNC_STORAGE_CONNECTION", conn), container=container
        )
    if url := _present(env.get("SYNC_STORAGE_ACCOUNT_URL")):
        if not url.startswith(("https://", "http://")):
            raise SettingsError("SYNC_STORAGE_ACCOUNT_URL must look like https://<account>.blob.core.windows.net")
        return AccountUrlTarget(
            account_url=url.rstrip("/"), client_id=_present(env.get("SYNC_STORAGE_CLIENT_ID")), container=container
        )
    if conn := _present(env.get("AzureWebJobsStorage")):
        return ConnectionStringTarget(
            connection_string=_connection_string("AzureWebJobsStorage", conn), container=container
        )
    # The host's identity-based connection: follow it the way the host does.
    service_uri = _present(env.get("AzureWebJobsStorage__blobServiceUri"))
    account = _present(env.get("AzureWebJobsStorage__accountName"))
    if service_uri or account:
        return AccountUrlTarget(
            account_url=(service_uri or f"https://{account}.blob.core.windows.net").rstrip("/"),
            client_id=_present(env.get("AzureWebJobsStorage__clientId")),
            container=container,
        )
    raise SettingsError(
        "AzureWebJobsStorage is missing (or set SYNC_STORAGE_CONNECTION or SYNC_STORAGE_ACCOUNT_URL for the state container)"
    )


def _connection_string(name: str, conn: str) -> SecretStr:
    """A connection string the storage SDK can read, else a SettingsError naming the setting (never its value):
    the SDK's own ValueError would otherwise surface as an unexpected error, a 500 or a traceback."""
    from azure.storage.blob import BlobServiceClient

    try:
        BlobServiceClient.from_connection_string(conn)  # parses only; no request is made
    except ValueError:
        raise SettingsError(
            f"{name} is not a valid storage connection string (DefaultEndpointsProtocol=...;AccountName=...;"
            "AccountKey=...;..., or UseDevelopmentStorage=true)"
        ) from None
    return SecretStr(conn)


def _valid_container_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", name))


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Validated settings, or SettingsError naming every missing or invalid setting (values of secrets never shown)."""
    env = read_environment(environ, cwd)
    try:
        return Settings.model_validate(env)
    except ValidationError as exc:
        # `from None`: the ValidationError carries the values given, secrets among them.
        # Where state lives first, then what is missing, then what is invalid.
        errors = sorted(exc.errors(), key=lambda err: {STORAGE_ERROR: 0, "missing": 1}.get(err["type"], 2))
        raise SettingsError("; ".join(dict.fromkeys(_describe(err, env) for err in errors))) from None


def _describe(err: ErrorDetails, env: Mapping[str, str]) -> str:
    """One problem as a sentence naming the setting; the value only when it is not a secret."""
    if err["type"] == STORAGE_ERROR:
        return err["msg"]
    name = str(err["loc"][0]) if err["loc"] else "settings"
    if err["type"] == "missing":
        hint = " (an unresolved Key Vault reference counts as missing)" if env.get(name) else ""
        return f"{name} is missing{hint}"
    message = err["msg"].removeprefix("Value error, ")
    value = _present(env.get(name))
    if name in SECRET_NAMES or value is None:
        return f"{name} is invalid: {message}"
    return f"{name} {value!r} is invalid: {message}"
