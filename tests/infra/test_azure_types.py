"""Every resource of infra/ against Azure's own resource type definitions (bicep-types-az, extracted for exactly the
types and API versions used): type and version known, every property name and its nesting, values of closed sets,
required properties present, read-only ones not set. What the Bicep compiler's type check would say, offline."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from .azure_types import Report, check_file, load_extract
from .conftest import ROOT


@pytest.fixture(scope="module")
def extract() -> dict[str, Any]:
    return load_extract()


def _check(bicep: dict[str, dict[str, Any]], extract: dict[str, Any]) -> tuple[Report, set[str]]:
    report, used = Report(), set()
    for path, parsed in sorted(bicep.items()):
        used |= set(check_file(path, parsed, extract, report))
    return report, used


def test_every_resource_matches_azures_definition(bicep: dict[str, dict[str, Any]], extract: dict[str, Any]) -> None:
    report, used = _check(bicep, extract)
    assert report.errors == []
    assert report.properties > 150  # the check looked at the template, not at nothing
    assert len(used) == 17


def test_the_extract_holds_exactly_the_types_and_versions_used(
    bicep: dict[str, dict[str, Any]], extract: dict[str, Any]
) -> None:
    """A new type or API version in infra/ needs scripts/refresh-azure-types.py; one no longer used leaves it."""
    _, used = _check(bicep, extract)
    assert set(extract["resources"]) == used
    assert re.fullmatch(r"[0-9a-f]{40}", extract["commit"])
    text = (ROOT / "scripts" / "refresh-azure-types.py").read_text()
    assert "tests/infra/azure-types.json" in text


def _site(bicep: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return bicep["infra/modules/function-app.bicep"]["resources"]["app"]["config"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda c: c["properties"].__setitem__("httpsOnyl", True), "properties.httpsOnyl: is not a property"),
        (
            lambda c: c["properties"]["siteConfig"].__setitem__("minTLSVersion", "1.2"),
            "properties.siteConfig.minTLSVersion: is not a property of this type (Azure spells it 'minTlsVersion')",
        ),
        (
            lambda c: c["properties"]["functionAppConfig"]["scaleAndConcurrency"].__setitem__("maxInstances", 4),
            "scaleAndConcurrency.maxInstances: is not a property",
        ),
        (lambda c: c["properties"].__setitem__("defaultHostName", "x"), "defaultHostName: is read-only"),
        (lambda c: c["identity"].__setitem__("type", "UserAssignedIdentity"), '"UserAssignedIdentity" is not one of'),
        (lambda c: c["properties"].__setitem__("httpsOnly", "yes"), '"yes" does not fit BooleanType'),
        (lambda c: c.pop("location"), "location: is required and missing"),
    ],
)
def test_a_wrong_property_fails_the_check(
    bicep: dict[str, dict[str, Any]], extract: dict[str, Any], change: Any, said: str
) -> None:
    broken = copy.deepcopy(bicep)
    change(_site(broken))
    report, _ = _check(broken, extract)
    assert len(report.errors) == 1, report.errors
    assert said in report.errors[0]
    assert report.errors[0].startswith("infra/modules/function-app.bicep app: ")


def test_an_unknown_api_version_fails_the_check(bicep: dict[str, dict[str, Any]], extract: dict[str, Any]) -> None:
    broken = copy.deepcopy(bicep)
    broken["infra/modules/keyvault.bicep"]["resources"]["vault"]["api_version"] = "2099-01-01"
    report, _ = _check(broken, extract)
    assert report.errors == [
        "infra/modules/keyvault.bicep: vault: Microsoft.KeyVault/vaults@2099-01-01 is not in tests/infra/azure-types.json"
    ]
