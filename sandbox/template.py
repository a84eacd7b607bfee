"""The app settings infra/ gives the function app, evaluated from the Bicep parse for a deployment's values."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA = REPO_ROOT / "infra"
INFRA_PYTHON = REPO_ROOT / ".venv-infra" / "bin" / "python"
FUNCTION_APP_MODULE = "functionApp"
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=https://[^/]+/secrets/([\w-]+)/?\)$")

# pycep-parser lives in .venv-infra (checkov pins its own dependency tree); its parse comes back as JSON.
_PARSE = (
    "import json,sys,pathlib;from pycep import BicepParser;p=BicepParser();"
    "json.dump({a:p.parse(file_path=pathlib.Path(a)) for a in sys.argv[1:]},sys.stdout,default=str)"
)


class TemplateError(RuntimeError):
    """The template could not be parsed, or names a value the deployment did not give."""


def parse_infra() -> dict[str, dict[str, Any]]:
    """Every .bicep file under infra/, by path relative to infra/ ('main.bicep', 'modules/function-app.bicep')."""
    if not INFRA_PYTHON.exists():
        raise TemplateError(f"{INFRA_PYTHON.relative_to(REPO_ROOT)} is missing: run scripts/setup-infra-tools.sh")
    files = sorted(str(p) for p in INFRA.rglob("*.bicep"))
    done = subprocess.run(
        [str(INFRA_PYTHON), "-c", _PARSE, *files], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode:
        raise TemplateError(f"parsing infra/ failed: {done.stderr.strip()[-500:]}")
    return {str(Path(p).relative_to(INFRA)): v for p, v in json.loads(done.stdout).items()}


def _dotted(node: Any) -> str | None:
    """`a.b.c` for a chain of property accessors, else None."""
    if isinstance(node, str):
        return node
    operator = node.get("operator") if isinstance(node, dict) else None
    if isinstance(operator, dict) and operator.get("type") == "property_accessor":
        first, rest = _dotted(operator["operands"]["operand_1"]), _dotted(operator["operands"]["operand_2"])
        return f"{first}.{rest}" if first and rest else None
    return None


class _Scope:
    """Names a Bicep file can use, looked up by dotted path; a missing one is a TemplateError naming it."""

    def __init__(self, where: str, values: Mapping[str, Any]) -> None:
        self.where = where
        self.values = values

    def lookup(self, path: str) -> Any:
        head, *rest = path.split(".")
        if head not in self.values:
            raise TemplateError(f"{self.where}: no value for {head!r} (give it in the deployment's values)")
        value = self.values[head]
        for part in rest:
            if not isinstance(value, Mapping) or part not in value:
                raise TemplateError(f"{self.where}: no value for {path!r}")
            value = value[part]
        return value

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, bool | int | float) or node is None:
            return node
        if isinstance(node, str):
            if node in self.values or (re.fullmatch(r"\w+(\.\w+)+", node) and node.split(".")[0] in self.values):
                return self.lookup(node)
            return re.sub(r"\$\{([^}]+)\}", lambda m: _text(self.evaluate(m[1])), node)
        if isinstance(node, list):
            return [self.evaluate(v) for v in node]
        dotted = _dotted(node)
        if dotted is not None:
            return self.lookup(dotted)
        if "operator" in node and node["operator"]["type"] == "conditional":
            operands = node["operator"]["operands"]
            chosen = operands["true_value"] if self.evaluate(operands["condition"]) else operands["false_value"]
            return self.evaluate(chosen)
        if "function" in node and node["function"]["type"] == "string":
            return _text(self.evaluate(node["function"]["parameters"]["value_to_convert"]))
        if "operator" not in node and "function" not in node:
            return {k: self.evaluate(v) for k, v in node.items()}
        raise TemplateError(f"{self.where}: an expression the rehearsal does not evaluate: {json.dumps(node)[:200]}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _variables(scope: _Scope, parsed: Mapping[str, Any]) -> dict[str, Any]:
    """The file's variables that evaluate here; one built from a function the rehearsal does not evaluate
    (uniqueString) is left out, and only a setting that uses it fails, naming it."""
    values = {}
    for name, variable in parsed.get("variables", {}).items():
        try:
            values[name] = scope.evaluate(variable["value"])
        except TemplateError:
            pass
    return values


def app_settings(
    parsed: Mapping[str, Mapping[str, Any]],
    deployment: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The function app's settings as the platform would hand them to the app.

    `deployment` gives what only a real deployment knows: main.bicep's parameters without a default, and, by name,
    anything the function-app module gets from other modules (`identityClientId`, `keyVaultUri`, `hasLeApiKey`) or
    reads from existing resources (`storage`, `applicationInsights`). Every other value is the template's own.
    `secrets` resolves Key Vault references by secret name, as the platform does with the app's identity.
    """
    main = parsed["main.bicep"]
    call = main["modules"][FUNCTION_APP_MODULE]
    module = parsed[call["detail"]["path"]]
    main_values: dict[str, Any] = {
        name: deployment.get(name, param.get("default")) for name, param in main["parameters"].items()
    }
    main_values = {name: value for name, value in main_values.items() if value is not None}
    main_scope = _Scope("main.bicep", main_values)
    main_values.update(_variables(main_scope, main))

    module_values: dict[str, Any] = {}
    for name in module["parameters"]:
        if name in deployment:
            module_values[name] = deployment[name]
        elif name in call["config"]["params"]:
            passed = call["config"]["params"][name]
            if isinstance(passed, str) and passed in main_values:
                module_values[name] = main_values[passed]
    for symbol in module.get("resources", {}):
        if symbol in deployment:
            module_values[symbol] = deployment[symbol]
    module_scope = _Scope(call["detail"]["path"], module_values)
    module_values.update(_variables(module_scope, module))

    site = next(r for r in module["resources"].values() if r["type"] == "Microsoft.Web/sites")
    settings: dict[str, str] = {}
    for entry in site["config"]["properties"]["siteConfig"]["appSettings"]:
        value = _text(module_scope.evaluate(entry["value"]))
        reference = KEY_VAULT_REFERENCE.match(value)
        if reference:
            if secrets is None or reference[1] not in secrets:
                raise TemplateError(f"{entry['name']} references the secret {reference[1]!r}, which was not given")
            value = secrets[reference[1]]
        settings[entry["name"]] = value
    return settings
