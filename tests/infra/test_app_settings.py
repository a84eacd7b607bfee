"""The function app's settings in Bicep against the settings the app and the host read: nothing unknown,
nothing required missing, nothing Flex Consumption refuses, secrets as Key Vault references."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sync_core.rules.schedule import DEFAULT_SCHEDULE
from sync_core.settings import DEFAULT_STATE_CONTAINER, AccountUrlTarget, Settings, load_settings

from .conftest import INFRA, ROOT, one_resource

# Read by the Functions host or the platform, not by sync_core's settings model.
HOST_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri",  # host storage with an identity (the app follows it too)
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",  # the user-assigned identity (the app follows it too)
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AzureWebJobsDisableHomepage",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",  # the Python worker sets up the Azure Monitor distro
    "OTEL_TRACES_SAMPLER",  # the distro's sampler, and its argument (the share of runs kept)
    "OTEL_TRACES_SAMPLER_ARG",
}
# Settings the template sets ahead of the settings model: a name here is read by code that lands in the same
# release. Each one leaves this set as soon as the model names it (the test below says so).
AHEAD_OF_THE_MODEL: set[str] = set()
# Flex Consumption keeps the runtime and the package in functionAppConfig and refuses these app settings.
REFUSED_ON_FLEX = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_DNS_SERVER",
    "WEBSITE_VNET_ROUTE_ALL",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/\$\{secretNames\.\w+\}\)$")


def _expression(node: Any) -> str:
    """A parsed Bicep expression as dotted text (`storage.properties.primaryEndpoints.blob`), for plain asserts."""
    if isinstance(node, dict) and "operator" in node:
        operands = node["operator"]["operands"]
        if node["operator"]["type"] == "property_accessor":
            return f"{_expression(operands['operand_1'])}.{_expression(operands['operand_2'])}"
        return " ".join(_expression(v) for v in operands.values())
    return str(node)


def _app_read_names() -> set[str]:
    """Every setting name sync_core and function_app.py read: the model's aliases and the names looked up directly."""
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    sources = [*ROOT.joinpath("sync_core").glob("*.py"), ROOT / "function_app.py"]
    for source in sources:
        names |= set(re.findall(r"""(?:env|environ)\.get\(\s*["']([A-Za-z_][\w.]*)["']""", source.read_text()))
        names |= set(re.findall(r"""_setting\(\s*["']([A-Za-z_][\w.]*)["']""", source.read_text()))
    return names


@pytest.fixture(scope="module")
def app_settings(bicep: dict[str, Any]) -> dict[str, Any]:
    entries = one_resource(bicep, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "a setting appears twice"
    return {e["name"]: e["value"] for e in entries}


def test_every_setting_is_one_the_app_or_the_host_reads(app_settings: dict[str, Any]) -> None:
    known = _app_read_names() | HOST_SETTINGS | AHEAD_OF_THE_MODEL
    assert set(app_settings) - known == set()


def test_settings_ahead_of_the_model_leave_that_list_once_the_model_has_them() -> None:
    assert AHEAD_OF_THE_MODEL & _app_read_names() == set(), "drop these from AHEAD_OF_THE_MODEL"


def test_every_required_setting_is_set(app_settings: dict[str, Any]) -> None:
    required = {f.alias for f in Settings.model_fields.values() if f.alias and f.is_required()}
    assert required == {"LEADPIER_USERNAME", "LEADPIER_PASSWORD", "LE_API_URL"}
    assert required <= set(app_settings)
    # Host storage (and so the app's state) by identity: the account's service URIs and the identity's client id.
    assert app_settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert app_settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "AzureWebJobsStorage__accountName" not in app_settings
    for service in ("blob", "queue"):
        assert f"storage.properties.primaryEndpoints.{service}" in _expression(
            app_settings[f"AzureWebJobsStorage__{service}ServiceUri"]
        )
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_no_setting_flex_consumption_refuses_and_no_storage_key(app_settings: dict[str, Any]) -> None:
    assert set(app_settings) & REFUSED_ON_FLEX == set()
    assert {"AzureWebJobsStorage", "SYNC_STORAGE_CONNECTION"} & set(app_settings) == set()


def test_secrets_are_key_vault_references_never_values(app_settings: dict[str, Any]) -> None:
    assert KEY_VAULT_REFERENCE.match(app_settings["LEADPIER_PASSWORD"])
    branches = app_settings["LE_API_KEY"]["operator"]["operands"]
    assert branches["condition"] == "hasLeApiKey"
    assert KEY_VAULT_REFERENCE.match(branches["true_value"])
    assert branches["false_value"] == ""  # no key: the setting is empty, which the app reads as unset


def _bicep_default(main_bicep: dict[str, Any], param: str) -> Any:
    return main_bicep["parameters"][param]["default"]


def test_the_template_defaults_are_the_app_defaults(main_bicep: dict[str, Any], app_settings: dict[str, Any]) -> None:
    fields = {f.alias: f for f in Settings.model_fields.values()}
    assert _bicep_default(main_bicep, "syncTimezone") == fields["SYNC_TIMEZONE"].default
    assert _bicep_default(main_bicep, "syncSchedule") == fields["SYNC_SCHEDULE"].default == DEFAULT_SCHEDULE
    assert _bicep_default(main_bicep, "stateContainerName") == DEFAULT_STATE_CONTAINER
    assert _bicep_default(main_bicep, "syncCatchupDays") == 7
    assert app_settings["SYNC_RUN_ON_STARTUP"] == "false"


def test_azd_parameters_map_environment_values_with_the_same_defaults(main_bicep: dict[str, Any]) -> None:
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main_bicep["parameters"]
    assert set(params) <= set(declared)
    for name, entry in params.items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"])
        assert match, f"{name} is not taken from the azd environment"
        if match[2] is not None:
            assert match[2] == str(declared[name]["default"]), name
    # Secrets are never written to the parameters file: azd prompts for them and keeps them out of .env.
    assert not {"leadpierPassword", "leApiKey"} & set(params)


def test_the_settings_as_deployed_load_in_the_app(
    app_settings: dict[str, Any], main_bicep: dict[str, Any], tmp_path: Path
) -> None:
    """The settings with sample values where Bicep has expressions, and the references resolved, are valid settings
    whose state is reached with the user-assigned identity."""
    samples = {
        "AzureWebJobsStorage__blobServiceUri": "https://stleadpierabc.blob.core.windows.net/",
        "AzureWebJobsStorage__queueServiceUri": "https://stleadpierabc.queue.core.windows.net/",
        "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=0;IngestionEndpoint=https://example.invalid/",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD",
        "LEADPIER_USERNAME": "someone",
        "LEADPIER_PASSWORD": "resolved-from-key-vault",
        "LE_API_URL": "https://le.example.invalid/email_dashboard/stats/le_api.php",
        "LE_API_KEY": "resolved-from-key-vault",
        "SYNC_TIMEZONE": _bicep_default(main_bicep, "syncTimezone"),
        "SYNC_SCHEDULE": _bicep_default(main_bicep, "syncSchedule"),
        "SYNC_CATCHUP_DAYS": str(_bicep_default(main_bicep, "syncCatchupDays")),
        "SYNC_STATE_CONTAINER": _bicep_default(main_bicep, "stateContainerName"),
        "SYNC_PYTHON_VERSION": "3.13",
    }
    environ = {
        name: value if isinstance(value, str) and "${" not in value and name not in samples else samples[name]
        for name, value in app_settings.items()
    }
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert isinstance(settings.storage, AccountUrlTarget)  # not a connection string
    assert settings.storage.account_url == "https://stleadpierabc.blob.core.windows.net"
    assert settings.storage.client_id == "00000000-0000-0000-0000-000000000001"
    assert settings.storage.container == "leadpier-sync"


def _range_of_field(alias: str) -> tuple[Any, Any]:
    """The (ge, le) bounds the settings model puts on a setting."""
    field = next(f for f in Settings.model_fields.values() if f.alias == alias)
    low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
    return low, high


def _param_range(param: dict[str, Any]) -> tuple[Any, Any]:
    decorators = {d["type"]: d.get("argument") for d in param["decorators"]}
    return decorators.get("min_value"), decorators.get("max_value")


def test_every_parameter_range_is_the_range_the_app_and_the_modules_accept(bicep: dict[str, Any]) -> None:
    """A value the template lets through is one the app and every module take: nothing deploys only for /health to
    answer 503, or fails halfway in a module."""
    main = bicep["infra/main.bicep"]["parameters"]
    assert _param_range(main["syncCatchupDays"]) == _range_of_field("SYNC_CATCHUP_DAYS")
    alerts = bicep["infra/modules/alerts.bicep"]["parameters"]
    assert _param_range(main["staleAfterMinutes"]) == _param_range(alerts["staleAfterMinutes"])
    # Every main parameter passed on to a module with a range of its own has exactly that range.
    for symbol, module in bicep["infra/main.bicep"]["modules"].items():
        target = bicep[f"infra/{module['detail']['path']}"]["parameters"]
        for name, value in module["config"]["params"].items():
            if isinstance(value, str) and value in main and _param_range(target[name]) != (None, None):
                assert _param_range(main[value]) == _param_range(target[name]), f"{symbol}.{name}"
