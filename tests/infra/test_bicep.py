"""What the Bicep template provisions, read from pycep-parser's parse of infra/: runtime, identity, storage, vault, roles."""

from __future__ import annotations

import re
from typing import Any

from .conftest import INFRA, ROOT, one_resource, resources_of_type

# Built-in role definition ids, the same in every tenant.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"


def _site(bicep: dict[str, Any]) -> dict[str, Any]:
    return one_resource(bicep, "Microsoft.Web/sites")


def test_every_module_is_a_local_file_and_no_registry_module_is_used(bicep: dict[str, Any]) -> None:
    for path, parsed in bicep.items():
        for name, module in parsed.get("modules", {}).items():
            assert module["type"] == "local", f"{path}: module {name} is not a local file"
            assert (ROOT / path).parent.joinpath(module["detail"]["path"]).is_file(), f"{path}: {name} not found"
    for file in INFRA.rglob("*.bicep"):
        assert "br/public:" not in file.read_text() and "br:" not in file.read_text(), file


def test_the_app_runs_python_3_13_on_flex_consumption_with_its_package_reached_by_the_identity(
    bicep: dict[str, Any],
) -> None:
    plan = one_resource(bicep, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux

    site = _site(bicep)
    assert site["kind"] == "functionapp,linux"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    function_app = next(parsed for path, parsed in bicep.items() if path.endswith("function-app.bicep"))
    assert function_app["variables"]["pythonVersion"]["value"] == "3.13"
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert config["scaleAndConcurrency"]["maximumInstanceCount"] == "maximumInstanceCount"


def _decorator(param: dict[str, Any], kind: str) -> Any:
    found = [d["argument"] for d in param["decorators"] if d["type"] == kind]
    return found[0] if found else None


def test_the_flex_limits_are_microsofts(main_bicep: dict[str, Any]) -> None:
    """Flex Consumption's documented limits: 40 to 1000 instances per function group (100 by default), and
    512, 2048 or 4096 MB per instance (2048 by default); each parameter's description names its source."""
    count = main_bicep["parameters"]["maximumInstanceCount"]
    assert (_decorator(count, "min_value"), _decorator(count, "max_value"), count["default"]) == (40, 1000, 100)
    memory = main_bicep["parameters"]["instanceMemoryMB"]
    assert (_decorator(memory, "allowed"), memory["default"]) == ([512, 2048, 4096], 2048)
    assert "https://learn.microsoft.com/azure/azure-functions/event-driven-scaling" in _decorator(count, "description")
    assert "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan" in _decorator(
        memory, "description"
    )


def test_the_region_is_one_offering_flex_consumption(main_bicep: dict[str, Any]) -> None:
    regions = _decorator(main_bicep["parameters"]["location"], "allowed")
    assert regions and len(regions) == len(set(regions))
    assert {"eastus", "westeurope", "centralindia", "australiaeast"} <= set(regions)
    assert not [r for r in regions if r.endswith("euap")]  # early-access regions are not for production


def test_no_output_name_is_one_the_linter_takes_for_a_secret(bicep: dict[str, Any]) -> None:
    """The linter's outputs-should-not-contain-secrets flags output names mentioning a password or a secret."""
    for path, parsed in bicep.items():
        for name in parsed.get("outputs", {}):
            assert not re.search(r"password|secret", name, re.I), f"{path}: output {name}"


def test_the_vault_name_changes_with_a_new_identity(main_bicep: dict[str, Any]) -> None:
    """`azd down` leaves the vault soft-deleted under purge protection, its name taken; the next `azd up` creates a
    new identity, and the vault's name follows the identity's principal id."""
    name = main_bicep["modules"]["keyVault"]["config"]["params"]["name"]
    assert name == "kv-lp-${take(uniqueString(resourceToken, identity.outputs.principalId), 13)}"
    assert len("kv-lp-") + 13 <= 24  # Key Vault names: 3 to 24 characters


def test_the_app_is_https_only_without_ftp_or_basic_publishing_credentials(bicep: dict[str, Any]) -> None:
    site = _site(bicep)
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["ftpsState"] == "Disabled"
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    policies = {
        c["name"]: c["properties"]["allow"]
        for _, _, c in resources_of_type(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    }
    assert policies == {"ftp": False, "scm": False}


def test_one_user_assigned_identity_serves_storage_key_vault_and_telemetry(bicep: dict[str, Any]) -> None:
    assert len(resources_of_type(bicep, "Microsoft.ManagedIdentity/userAssignedIdentities")) == 1
    site = _site(bicep)
    assert site["identity"]["type"] == "UserAssigned"
    assert [k.strip("'") for k in site["identity"]["userAssignedIdentities"]] == ["${identityId}"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_storage_refuses_shared_keys_public_blobs_and_old_tls(bicep: dict[str, Any]) -> None:
    props = one_resource(bicep, "Microsoft.Storage/storageAccounts")["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["defaultToOAuthAuthentication"] is True
    for _, _, container in resources_of_type(bicep, "Microsoft.Storage/storageAccounts/blobServices/containers"):
        assert container["properties"]["publicAccess"] == "None"
    # No account key is ever read, so none can end up in a setting or an output.
    for file in INFRA.rglob("*.bicep"):
        assert not re.search(r"listKeys|AccountKey=", file.read_text()), file


def test_the_lifecycle_rule_deletes_runs_and_logs_of_the_state_container_after_the_retention(
    bicep: dict[str, Any], main_bicep: dict[str, Any]
) -> None:
    (rule,) = one_resource(bicep, "Microsoft.Storage/storageAccounts/managementPolicies")["properties"]["policy"][
        "rules"
    ]
    assert rule["enabled"] is True
    filters = rule["definition"]["filters"]
    assert filters["prefixMatch"] == [
        "${stateContainerName}/runs/",
        "${stateContainerName}/logs/",
        "${stateContainerName}/summaries/",
    ]
    assert set(filters["blobTypes"]) == {"blockBlob", "appendBlob"}
    assert rule["definition"]["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": "retentionDays"}
    assert main_bicep["parameters"]["retentionDays"]["default"] == 90


def test_key_vault_uses_rbac_soft_delete_and_purge_protection(bicep: dict[str, Any]) -> None:
    props = one_resource(bicep, "Microsoft.KeyVault/vaults")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    # The secrets' names come from main.bicep, which hands the same names to the app settings' references.
    names = bicep["infra/main.bicep"]["variables"]["secretNames"]["value"]
    secrets = {
        names[c["name"]["operator"]["operands"]["operand_2"]]: c["properties"]
        for _, _, c in resources_of_type(bicep, "Microsoft.KeyVault/vaults/secrets")
    }
    assert set(secrets) == {"leadpier-password", "le-api-key"}
    assert {s["value"] for s in secrets.values()} == {"leadpierPassword", "leApiKey"}  # the @secure() parameters
    assert all(s["contentType"] == "text/plain" for s in secrets.values())


def test_application_insights_takes_entra_id_authenticated_telemetry_only(bicep: dict[str, Any]) -> None:
    component = one_resource(bicep, "Microsoft.Insights/components")
    assert component["properties"]["DisableLocalAuth"] is True
    assert component["properties"]["WorkspaceResourceId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": "id"}}
    }
    workspace = one_resource(bicep, "Microsoft.OperationalInsights/workspaces")
    assert workspace["properties"]["features"]["disableLocalAuth"] is True


def test_roles_are_exactly_what_the_app_uses_each_on_its_own_resource(bicep: dict[str, Any]) -> None:
    expected = {
        STORAGE_BLOB_DATA_OWNER: "Microsoft.Storage/storageAccounts",
        STORAGE_QUEUE_DATA_CONTRIBUTOR: "Microsoft.Storage/storageAccounts",
        KEY_VAULT_SECRETS_USER: "Microsoft.KeyVault/vaults",
        MONITORING_METRICS_PUBLISHER: "Microsoft.Insights/components",
    }
    granted = {}
    for path, symbol, config in resources_of_type(bicep, "Microsoft.Authorization/roleAssignments"):
        parsed = bicep[path]
        assert parsed["globals"]["scope"]["value"] == "resourceGroup", (
            f"{symbol}: assignments live in a resource group module"
        )
        role = config["properties"]["roleDefinitionId"]["function"]
        assert role["type"] == "subscription_resource_id"
        role_id = parsed["variables"][role["parameters"]["resource_name_1"]]["value"]
        # Scoped to a resource of this module, never to the resource group or the subscription.
        scope = parsed["resources"][config["scope"]]
        assert scope["existing"] is True
        assert config["properties"]["principalId"] == "principalId"
        assert config["properties"]["principalType"] == "ServicePrincipal"
        granted[role_id] = scope["type"]
    assert granted == expected


def test_the_host_starts_only_once_its_roles_exist(main_bicep: dict[str, Any]) -> None:
    assert "roles" in main_bicep["modules"]["functionApp"]["config"]["dependsOn"]


def _references(node: Any, names: set[str]) -> set[str]:
    """Names among `names` that a parsed expression uses, except inside empty(...), which only tests for a value."""
    if isinstance(node, str):
        return {n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", node)}
    if isinstance(node, dict):
        if node.get("function", {}).get("type") == "empty" if isinstance(node.get("function"), dict) else False:
            return set()
        return set().union(*(_references(v, names) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_references(v, names) for v in node)) if node else set()
    return set()


def test_no_secret_in_an_output_or_a_default(bicep: dict[str, Any]) -> None:
    for path, parsed in bicep.items():
        params = parsed.get("parameters", {})
        secure = {n for n, p in params.items() if any(d["type"] == "secure" for d in p["decorators"])}
        for name, param in params.items():
            if param["type"] == "string" and re.search(
                r"(password|secret|key)$", name, re.I
            ):  # a ...SecretUri is a reference, not a secret
                assert name in secure, f"{path}: {name} looks like a secret but is not @secure()"
        for name in secure:
            assert params[name]["default"] is None, f"{path}: @secure() {name} has a default"
        variables = {n: v["value"] for n, v in parsed.get("variables", {}).items()}
        tainted = secure | {v for v, value in variables.items() if _references(value, secure)}
        for name, output in parsed.get("outputs", {}).items():
            assert not _references(output["value"], tainted), f"{path}: output {name} carries a secret"
            assert not any(d["type"] == "secure" for d in output["decorators"])


def test_main_declares_the_secrets_as_secure_parameters_that_azd_prompts_for(main_bicep: dict[str, Any]) -> None:
    params = main_bicep["parameters"]
    for name in ("leadpierPassword", "leApiKey"):
        assert {"type": "secure"} in params[name]["decorators"]
        assert params[name]["default"] is None


def test_outputs_give_the_app_name_its_url_and_the_function_key_command(main_bicep: dict[str, Any]) -> None:
    outputs = main_bicep["outputs"]
    assert {"AZURE_FUNCTION_APP_NAME", "AZURE_FUNCTION_APP_URL", "AZURE_FUNCTION_KEY_COMMAND"} <= set(outputs)
    assert outputs["AZURE_FUNCTION_KEY_COMMAND"]["value"].startswith("az functionapp keys list -n ${")


def _module_output_uses(node: Any) -> set[tuple[str, str]]:
    """(module, output) pairs of every `<module>.outputs.<name>` in a parsed expression."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        operands = node.get("operator", {}).get("operands", {}) if isinstance(node.get("operator"), dict) else {}
        inner = operands.get("operand_2")
        if isinstance(operands.get("operand_1"), str) and isinstance(inner, dict):
            inner_operands = inner.get("operator", {}).get("operands", {})
            if inner_operands.get("operand_1") == "outputs" and isinstance(inner_operands.get("operand_2"), str):
                found.add((operands["operand_1"], inner_operands["operand_2"]))
        for value in node.values():
            found |= _module_output_uses(value)
    elif isinstance(node, list):
        for value in node:
            found |= _module_output_uses(value)
    elif isinstance(node, str):
        found |= set(re.findall(r"(\w+)\.outputs\.(\w+)", node))
    return found


def test_modules_get_exactly_their_parameters_and_give_the_outputs_main_uses(
    bicep: dict[str, Any], main_bicep: dict[str, Any]
) -> None:
    """What the Bicep compiler would refuse, checked on the parse: an unknown or missing module parameter, or an
    output a module does not declare."""
    modules = main_bicep["modules"]
    for symbol, module in modules.items():
        target = bicep[f"infra/{module['detail']['path']}"]
        declared = target["parameters"]
        passed = set(module["config"]["params"])
        required = {name for name, p in declared.items() if p["default"] is None}
        assert passed <= set(declared), f"{symbol}: unknown parameters {passed - set(declared)}"
        assert required <= passed, f"{symbol}: missing parameters {required - passed}"
    for module_symbol, output in _module_output_uses(main_bicep):
        target = bicep[f"infra/{modules[module_symbol]['detail']['path']}"]
        assert output in target["outputs"], f"{module_symbol} has no output {output}"
