"""Docs that cannot drift: the function table and every count of functions against the app's own metadata, and the
runbook's commands parsed, and run against the sandbox where they apply."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.docs_helpers import section
from tests.functions_helpers import REPO_ROOT, indexed_functions

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
NUMBERS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14}


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    """Each function's trigger binding, as the host reads it."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SYNC_SCHEDULE", raising=False)
        found = indexed_functions()
    return {
        name: next(json.loads(b) for b in fn.get_raw_bindings() if json.loads(b)["direction"] == "IN")
        for name, fn in found.items()
    }


def _function_table() -> dict[str, list[str]]:
    """DEPLOY.md's table of the app's functions: name -> its other cells."""
    text = section((REPO_ROOT / "docs" / "DEPLOY.md").read_text(), "## The app's functions")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| `")
    ]
    return {row[0].strip("`"): row[1:] for row in rows}


def test_the_deploy_function_table_lists_every_function_with_its_trigger_and_auth(functions: dict[str, Any]) -> None:
    table = _function_table()
    assert sorted(table) == sorted(functions)
    for name, binding in functions.items():
        trigger, auth = table[name][0], table[name][1]
        if binding["type"] == "httpTrigger":
            path = "/" + re.sub(r"\{[^}]*\}", "", binding["route"]).rstrip("/")
            path = "/" if path.startswith("/{") or binding["route"].startswith("{") else path
            assert all(f"{method.upper()} {path}" in trigger for method in binding["methods"]), (name, trigger)
            assert auth == binding["authLevel"].lower(), name
        elif binding["type"] == "timerTrigger":
            assert "timer" in trigger and auth == "", name
        else:
            assert binding["queueName"] in trigger and auth == "", name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_count_of_functions_in_the_docs_is_the_apps(doc: Any, functions: dict[str, Any]) -> None:
    words = "|".join(NUMBERS)
    counts = re.findall(rf"\b(\d+|{words}) (?:Azure )?functions\b", doc.read_text(), re.I)
    assert [int(c) if c.isdigit() else NUMBERS[c.lower()] for c in counts] == [len(functions)] * len(counts)
