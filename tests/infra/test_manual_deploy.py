"""The manual deployment path of docs/DEPLOY.md against the template: every app setting the template writes is set by
hand too, and every shell block of that path is valid shell."""

from __future__ import annotations

from typing import Any

from tests.docs_helpers import bash_syntax_error, section, settings_set_by, shell_blocks

from .conftest import ROOT, one_resource

DEPLOY = ROOT / "docs" / "DEPLOY.md"
MANUAL = "## Deploying by hand with the Azure CLI (without azd)"
# One identity-based host storage connection, said two ways: the account's name, or its blob and queue endpoints.
SAME_CONNECTION = {
    "AzureWebJobsStorage__accountName": {"AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri"}
}


def test_the_manual_path_sets_every_app_setting_the_template_sets(bicep: dict[str, Any]) -> None:
    template = {
        e["name"] for e in one_resource(bicep, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    }
    by_hand = settings_set_by(shell_blocks(section(DEPLOY.read_text(), MANUAL)))
    by_hand |= {name for name, forms in SAME_CONNECTION.items() if forms <= by_hand}
    assert template - by_hand == set(), "set by the template but not by the manual path of docs/DEPLOY.md"


def test_the_manual_path_sets_no_setting_the_app_and_host_would_not_read(bicep: dict[str, Any]) -> None:
    from .test_app_settings import HOST_SETTINGS, _app_read_names

    template = {
        e["name"] for e in one_resource(bicep, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    }
    by_hand = settings_set_by(shell_blocks(section(DEPLOY.read_text(), MANUAL)))
    slot_only = {"AzureWebJobs.sync_timer.Disabled", "AzureWebJobs.sync_worker.Disabled"}
    assert by_hand - template - _app_read_names() - HOST_SETTINGS - slot_only == set()


def test_every_shell_block_of_the_manual_path_is_valid_shell() -> None:
    blocks = shell_blocks(section(DEPLOY.read_text(), MANUAL))
    assert len(blocks) >= 5
    assert [bash_syntax_error(b) for b in blocks] == [None] * len(blocks)


def test_settings_are_found_in_a_settings_command() -> None:
    block = (
        "az functionapp config appsettings set -n $APP -g $RG --settings \\\n  A=1 'B=two words' \"C=$X\" --slot x\n"
    )
    assert settings_set_by([block, "az functionapp config appsettings delete --setting-names D\n"]) == {"A", "B", "C"}
