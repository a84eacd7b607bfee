"""azure.yaml describes a Python function app whose project folder is deployable, and .funcignore keeps tooling out of the package."""

from __future__ import annotations

from typing import Any

from .conftest import ROOT, one_resource, run_tools_parse


def test_azure_yaml_declares_one_python_function_service_at_the_repository_root(bicep: dict[str, Any]) -> None:
    project = run_tools_parse("yaml", [ROOT / "azure.yaml"])["azure.yaml"]
    ((name, service),) = project["services"].items()
    # azd deploys the service to the resource tagged with its name.
    tags = one_resource(bicep, "Microsoft.Web/sites")["tags"]["function"]["parameters"]["arg_2"]
    assert tags == {"'azd-service-name'": name}
    assert service["host"] == "function"
    assert service["language"] == "python"
    folder = ROOT / service["project"]
    for needed in ("function_app.py", "host.json", "requirements.txt"):
        assert (folder / needed).is_file(), needed


def test_funcignore_keeps_tests_tooling_docs_and_infra_out_of_the_package() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (
        "tests/",
        "sandbox/",
        "bench/",
        "docs/",
        "infra/",
        "scripts/",
        ".venv/",
        ".venv-*/",
        "azure.yaml",
        ".azure/",
        "local.settings.json",
    ):
        assert entry in ignored, entry
    for needed in ("function_app.py", "host.json", "requirements.txt", "sync_core/"):
        assert needed not in ignored, needed
