"""Docs that cannot drift: the function table and every count of functions against the app's own metadata, and the
runbook's commands parsed, and run against the sandbox where they apply."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.docs_helpers import bash_syntax_error, commands, section, shell_blocks
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


# -- the runbook ---------------------------------------------------------------------------------------

RUNBOOK = REPO_ROOT / "docs" / "RUNBOOK.md"


def runbook_blocks() -> list[str]:
    return shell_blocks(RUNBOOK.read_text())


def test_every_block_of_the_runbook_is_valid_shell() -> None:
    blocks = runbook_blocks()
    assert len(blocks) >= 10
    assert [bash_syntax_error(block) for block in blocks] == [None] * len(blocks)


def test_the_runbook_is_linked_from_the_readme_and_operations() -> None:
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "OPERATIONS.md"):
        assert "RUNBOOK.md" in doc.read_text(), doc.name


def test_the_runbook_covers_what_an_operator_meets() -> None:
    headings = re.findall(r"^## \d+\. (.+)$", RUNBOOK.read_text(), re.M)
    for topic in (
        "dashboard",
        "/health",
        "Backfill",
        "poison queue",
        "Rotating the LeadPier password",
        "Rolling back",
        "alerts",
    ):
        assert any(topic.lower() in h.lower() for h in headings), topic
    health_table = section(RUNBOOK.read_text(), "## 3. What `/health` says, and what fixes it")
    for said in (
        "settings",
        "Key Vault",
        "storage",
        "last successful run",
        "poison",
        "catching up",
        "catch-up window",
        "timer",
    ):
        assert said.lower() in health_table.lower(), said


@pytest.fixture
def sandbox_url(sync_env: dict[str, str], leadpier: Any) -> Iterator[str]:
    """The app's routes on 127.0.0.1 as `scripts/sandbox.sh --serve` serves them, with its key checked."""
    from sandbox.serve import Host, _Server, index
    from tests.functions_helpers import load_function_app

    routes, _ = index(load_function_app())
    host = Host(routes, None, None, SANDBOX_KEY, os.environ["AzureWebJobsStorage"], "0 */10 * * * *")
    server = _Server(0, host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SANDBOX_KEY = "runbook-test-key"


def test_every_curl_of_the_runbook_works_against_the_sandbox(sandbox_url: str) -> None:
    lines = [c for block in runbook_blocks() for c in commands(block) if c.startswith(("curl ", 'echo "$URL'))]
    assert sum(line.startswith("curl ") for line in lines) >= 10
    env = {**os.environ, "URL": sandbox_url, "KEY": SANDBOX_KEY}
    for line in lines:
        done = subprocess.run(["bash", "-c", f"set -euo pipefail; {line}"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
        if line.startswith("echo"):  # an address to open: it opens
            with urllib.request.urlopen(done.stdout.strip(), timeout=30) as page:
                assert page.status == 200 and b"Runs, last 7 days" in page.read()
        else:
            json.loads(done.stdout)  # every answer is the route's JSON, not an error page
