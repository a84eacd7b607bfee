"""What the app runs on, as /health reports it: the Python, azure-functions, the worker, and a mismatch as a sentence."""

from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path

import pytest

from sync_core.web.runtime_info import functions_line_for, runtime_check
from tests.functions_helpers import App, body

ROOT = Path(__file__).resolve().parents[1]


def test_the_python_the_deployment_asked_for_is_ok() -> None:
    check = runtime_check("3.13", python="3.13.1", azure_functions="2.0.0", worker="azure-functions-runtime 1.3.0")
    assert check.status == "ok"
    assert check.detail == "Python 3.13.1, azure-functions 2.0.0, as the deployment asked (3.13)"
    assert check.worker == "azure-functions-runtime 1.3.0"


def test_another_python_than_asked_is_a_warning_naming_both() -> None:
    check = runtime_check("3.13", python="3.12.8", azure_functions="1.21.3")
    assert check.status == "warning"
    assert "runs on Python 3.12 but the deployment asked for 3.13 (SYNC_PYTHON_VERSION)" in check.detail


@pytest.mark.parametrize(("python", "installed", "line"), [("3.13.0", "1.24.0", 2), ("3.12.8", "2.0.0", 1)])
def test_an_azure_functions_line_that_does_not_match_the_python_is_a_warning(
    python: str, installed: str, line: int
) -> None:
    check = runtime_check(None, python=python, azure_functions=installed)
    assert check.status == "warning"
    assert f"azure-functions {installed} is installed, but Python {python[:4]} takes the {line}.x line" in check.detail


def test_the_rule_is_the_one_the_requirements_use() -> None:
    """requirements.in gives 2.x from Python 3.13 and 1.x below it: the check follows the same markers."""
    text = (ROOT / "requirements.in").read_text()
    lines = dict(re.findall(r'^azure-functions>=(\d+)\.[^;\n]*;\s*python_version\s*(>=|<)\s*"3\.13"', text, re.M))
    assert lines == {"2": ">=", "1": "<"}
    assert functions_line_for((3, 13)) == 2 and functions_line_for((3, 12)) == 1 and functions_line_for((3, 11)) == 1


def test_what_is_installed_here_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    check = runtime_check(None)
    assert check.python == platform.python_version()
    assert check.azure_functions == metadata.version("azure-functions")
    assert check.status == "ok"


def test_health_reports_the_runtime_and_is_degraded_on_another_python(
    sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = ".".join(platform.python_version().split(".")[:2])
    monkeypatch.setenv("SYNC_PYTHON_VERSION", here)
    shown = body(App().get("health", "/health"))
    assert shown["status"] == "healthy"
    assert shown["checks"]["runtime"]["python"] == platform.python_version()
    assert shown["checks"]["runtime"]["azure_functions"] == metadata.version("azure-functions")

    other = "3.12" if here != "3.12" else "3.13"
    monkeypatch.setenv("SYNC_PYTHON_VERSION", other)
    from sync_core import services

    services.reset()
    response = App().get("health", "/health")
    shown = body(response)
    assert response.status_code == 200
    assert shown["status"] == "degraded"
    assert f"runs on Python {here} but the deployment asked for {other}" in shown["reason"]
