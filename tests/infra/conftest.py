"""Fixtures of the infra tests: the Bicep files of infra/ as pycep-parser parses them, and the tools venv that parses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TOOLS = ROOT / ".venv-infra" / "bin"


def tools_bin(name: str) -> Path:
    """A program of the infra tools venv; a clear failure when scripts/setup-infra-tools.sh has not run."""
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run scripts/setup-infra-tools.sh (scripts/test.sh does)")
    return path


def run_tools_parse(kind: str, paths: list[Path]) -> dict[str, Any]:
    done = subprocess.run(
        [str(tools_bin("python")), str(Path(__file__).with_name("tools_parse.py")), kind, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        pytest.fail(f"parsing {kind} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {str(Path(p).relative_to(ROOT)): v for p, v in json.loads(done.stdout).items()}


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict[str, Any]]:
    """Every .bicep file under infra/, by path relative to the repository ('infra/main.bicep'), as parsed by pycep."""
    files = sorted(INFRA.rglob("*.bicep"))
    assert files, "no .bicep file under infra/"
    return run_tools_parse("bicep", files)


@pytest.fixture(scope="session")
def main_bicep(bicep: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return bicep["infra/main.bicep"]


def resources_of_type(bicep: dict[str, dict[str, Any]], type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, symbolic name, config) of every declared (not `existing`) resource of a type; a conditional
    resource's config is unwrapped."""
    found = []
    for path, parsed in bicep.items():
        for symbol, resource in parsed.get("resources", {}).items():
            if resource["type"].lower() == type_.lower() and not resource.get("existing"):
                config = resource["config"]
                if "condition" in config and "config" in config:
                    config = config["config"]
                found.append((path, symbol, config))
    return found


def one_resource(bicep: dict[str, dict[str, Any]], type_: str) -> dict[str, Any]:
    found = resources_of_type(bicep, type_)
    assert len(found) == 1, f"expected one {type_}, found {[(p, s) for p, s, _ in found]}"
    return found[0][2]
